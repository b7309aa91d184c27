import Hummingbird
import NIOCore

/// `GET /metrics`: the Prometheus text (`MetricsExposition`).
struct MetricsRoutes<Context: RequestContext> {
    let exposition: MetricsExposition

    func register(on router: Router<Context>) {
        router.get("/metrics") { _, _ in
            let text = await exposition.scrape()
            return Response(
                status: .ok, headers: [.contentType: MetricsExposition.contentType],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
        }
    }
}

/// The router of the metrics listener (`metrics.listen`): `/metrics` and
/// nothing else (any other path is a 404). Public so tests can drive it.
public func makeMetricsRouter(_ exposition: MetricsExposition) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.middlewares.add(ProblemMiddleware())
    MetricsRoutes<BasicRequestContext>(exposition: exposition).register(on: router)
    return router
}
