import Foundation
import Testing

/// The host port contract (Tests/SRIOVHostTests/HostContractTests.swift)
/// against the real igb driver: the VM runs the built test binary's contract
/// suite with SRIOVD_CONTRACT_PF set, so every case runs against FakeHost
/// and against KernelHost on igb.
@Suite("Host port contract on the real igb driver (SR-IOV test VM; needs root, QEMU, virtme-ng)", .serialized,
       .enabled(if: Rig.shouldRun, "SR-IOV test VM unavailable: \(Rig.unavailableReason ?? "")"))
struct ContractRigTests {
    static let scenario = RigScenario(name: "contract", batch: .onePF)
    /// The contract's cases, by test function name.
    static let cases = ["vfCount", "addresses", "settingsReadBack", "unsupported", "rateWhileLinkDown", "binding", "badInput"]

    @Test("every contract case ran against the kernel and against the fake, and none failed")
    func contractHolds() async throws {
        let out = try await Self.scenario.output()
        let log = (try? out.file("contract.log")) ?? ""
        let exit = try out.file("contract-exit").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(exit == "0", "contract suite failed in the VM:\n\(log.suffix(6000))")
        let ran = Set(((try? out.file("contract-ran.txt")) ?? "").split(separator: "\n").map(String.init))
        for name in Self.cases {
            #expect(ran.contains("RAN \(name) kernel"), "\(name) did not run (to its end) against igb")
            #expect(ran.contains("RAN \(name) fake"), "\(name) did not run (to its end) against the fake")
        }
    }
}
