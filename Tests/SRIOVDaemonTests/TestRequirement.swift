import Foundation
import Testing

/// Tests that need what a machine may lack (root, systemd's tools, a built
/// package): skipped with the reason where it is missing, except where the
/// run says every test must run, in CI (`CI=true`) or with
/// `SRIOVD_REQUIRE_RIG=1` (scripts/test.sh): there they run and fail on what
/// is missing, so a CI machine without root or systemd-analyze cannot pass
/// by skipping. An explicit `SRIOVD_REQUIRE_RIG=0` allows the skips (scripts/test.sh
/// then lists the suites it skipped).
enum TestRequirement {
    static var enforced: Bool { enforced(in: ProcessInfo.processInfo.environment) }

    static func enforced(in environment: [String: String]) -> Bool {
        switch environment["SRIOVD_REQUIRE_RIG"] {
        case "1": return true
        case "0": return false
        default: return ["true", "1"].contains(environment["CI"]?.lowercased() ?? "")
        }
    }

    /// Fails the running test when `unavailable` names something missing
    /// (the test runs then only because the run requires it).
    static func check(_ unavailable: String?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try #require(
            unavailable == nil, "required in this run (CI or SRIOVD_REQUIRE_RIG=1) but unavailable: \(unavailable ?? "")",
            sourceLocation: sourceLocation)
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test where `unavailable` is nil, or where the run requires
    /// every test (`TestRequirement.enforced`); skips it elsewhere, saying why.
    /// The test calls `TestRequirement.check` with the same reason first.
    static func needing(_ unavailable: String?) -> Self {
        .enabled(if: unavailable == nil || TestRequirement.enforced, Comment(rawValue: unavailable ?? ""))
    }
}

@Suite("which runs require every test")
struct TestRequirementTests {
    @Test("CI=true or SRIOVD_REQUIRE_RIG=1 require them; SRIOVD_REQUIRE_RIG=0 allows skips, even in CI")
    func switches() {
        #expect(TestRequirement.enforced(in: ["CI": "true"]))
        #expect(TestRequirement.enforced(in: ["SRIOVD_REQUIRE_RIG": "1"]))
        #expect(TestRequirement.enforced(in: ["SRIOVD_REQUIRE_RIG": "1", "CI": "false"]))
        #expect(!TestRequirement.enforced(in: ["SRIOVD_REQUIRE_RIG": "0", "CI": "true"]))
        #expect(!TestRequirement.enforced(in: [:]))
        #expect(TestRequirement.enforced(in: ["CI": "1"]))
        #expect(!TestRequirement.enforced(in: ["CI": "false"]))
    }
}
