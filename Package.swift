// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "sriovd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sriovd", targets: ["sriovd"]),
        .executable(name: "sriovctl", targets: ["sriovctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.12.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
    ],
    targets: [
        // C libraries, through pkg-config. Only SRIOVHost imports these.
        .systemLibrary(
            name: "CNetlink", pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]),
        .systemLibrary(
            name: "CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(
            name: "CPCI", pkgConfig: "libpci",
            providers: [.apt(["libpci-dev"])]),
        // What Swift cannot call itself: variadic functions, libpci's noreturn
        // error handler, struct ucred.
        .target(name: "CSRIOVShim", dependencies: ["CPCI", "CSystemd"]),

        // Domain values: parsed once at the edge, no I/O.
        .target(name: "SRIOVCore"),
        // The API's request and response bodies, defined once for the daemon
        // and the client. Needs no more than FoundationEssentials.
        .target(name: "SRIOVAPI", dependencies: ["SRIOVCore"]),
        // The kernel boundary: sysfs, netlink, libpci, systemd.
        .target(
            name: "SRIOVHost",
            dependencies: [
                "SRIOVCore", "CNetlink", "CSystemd", "CPCI", "CSRIOVShim",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        // The host port in memory (`FakeHost`): the one fake of the kernel
        // boundary every test suite uses; the contract suite checks it
        // against the real igb driver.
        .target(name: "SRIOVHostTesting", dependencies: ["SRIOVHost", "SRIOVCore"]),
        // The daemon: API, services, configuration, logging.
        .target(
            name: "SRIOVDaemon",
            dependencies: [
                "SRIOVHypervisor",
                "SRIOVCore", "SRIOVHost", "SRIOVAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            ]),
        // The API's client over the Unix socket, HTTP/1.1 by NIO's codec:
        // sriovctl and the tests.
        .target(
            name: "SRIOVClient",
            dependencies: [
                "SRIOVCore", "SRIOVAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // Hypervisor adapters for failover: QEMU's monitor (QMP), a hook command.
        .target(
            name: "SRIOVHypervisor",
            dependencies: [
                "SRIOVHost",
                "SRIOVCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]),
        // Test support, in no product: drives a Hummingbird application's
        // router in-process (no socket, no HTTP client stack).
        .target(
            name: "SRIOVRouterTesting",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "sriovd",
            dependencies: [
                "SRIOVDaemon", "SRIOVCore", "SRIOVHost",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "sriovctl",
            dependencies: [
                "SRIOVClient", "SRIOVCore", "SRIOVAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "SRIOVCoreTests", dependencies: ["SRIOVCore"]),
        .testTarget(
            name: "SRIOVHostTests",
            dependencies: [
                "SRIOVHost", "SRIOVCore", "SRIOVHostTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "SRIOVClientTests",
            dependencies: [
                "SRIOVClient", "SRIOVCore", "SRIOVAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .testTarget(
            name: "SRIOVDaemonTests",
            dependencies: [
                "SRIOVDaemon", "SRIOVClient", "SRIOVCore", "SRIOVHost", "SRIOVHostTesting", "SRIOVAPI", "SRIOVRouterTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        // QMP against a real QEMU process with a Linux guest (needs
        // qemu-system-x86_64, a kernel in /boot and busybox-static).
        // The migration engine and API driving that guest (a fake host: the
        // machine has no VFs; QEMU and the guest are real).
        .testTarget(
            name: "SRIOVHypervisorTests",
            dependencies: [
                "SRIOVHypervisor", "SRIOVCore", "SRIOVDaemon", "SRIOVHostTesting", "SRIOVAPI",
                .product(name: "Logging", package: "swift-log"),
                "SRIOVRouterTesting",
            ]),
        // Real-kernel tests: boot the SR-IOV test VM (scripts/rig) and check
        // sriovd against the igb driver. Need root, QEMU and virtme-ng.
        .testTarget(name: "RigTests", dependencies: ["SRIOVClient", "SRIOVCore", "SRIOVDaemon", "SRIOVHost"], exclude: ["Scenarios"]),
    ],
    swiftLanguageModes: [.v6]
)
