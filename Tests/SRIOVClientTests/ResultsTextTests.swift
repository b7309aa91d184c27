import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("What a VF change shows a person")
struct ResultsTextTests {
    func report(_ body: String, status: String = "200 OK") throws -> SRIOVClient.VFChangeReport {
        let (code, reason) = (Int(status.prefix(3))!, String(status.dropFirst(4)))
        return try SRIOVClient.VFChangeReport(
            response: .init(status: code, reason: reason, body: Array(body.utf8)))
    }

    @Test func changeShowsEachSettingsOutcomeThenTheVF() throws {
        let text = ResultsText.vfChange(try report(ControlFixture.changedJSON), noResults: "unused")
        #expect(
            text == """
                SETTING    OUTCOME      DETAIL
                vlan       applied      -
                trust      unchanged    -
                linkState  unsupported  \(ControlFixture.unsupportedLinkState)

                PF            VF  PCI           DRIVER  NETDEV    MAC                VLAN  QOS  SPOOFCHK  TRUST  LINK  TX RATE  IOMMU
                0000:01:00.0  0   0000:01:10.0  igbvf   enp1s0v0  52:54:00:00:00:01  100   3    on        on     auto  0/1000   12

                """)
    }

    @Test func failedChangeShowsTheResultsFromTheProblemAndNoVF() throws {
        let failed = try report(ControlFixture.failedProblem, status: "500 Internal Server Error")
        #expect(
            ResultsText.vfChange(failed, noResults: "unused") == """
                SETTING     OUTCOME     DETAIL
                mac         rolledBack  -
                vlan        unchanged   -
                spoofCheck  failed      \(ControlFixture.spoofCheckFailure)

                """)
        #expect(ResultsText.notes(failed, vf: ControlFixture.vfAddress).isEmpty)
    }

    @Test func unsupportedSettingIsANoteNotAnError() throws {
        let notes = ResultsText.notes(try report(ControlFixture.changedJSON), vf: ControlFixture.vfAddress)
        #expect(
            notes == [
                "note: 0000:01:10.0: linkState was left as it was: the VF's driver does not support it (not an error)"
            ])
    }

    @Test func restoreOfAnUntouchedVFSaysSoAndShowsTheVF() throws {
        let restored = try report(#"{"vf":\#(ControlFixture.vfJSON),"results":[]}"#)
        let text = ResultsText.vfChange(restored, noResults: "Nothing to restore.")
        #expect(text.hasPrefix("Nothing to restore.\n\nPF  "))
        #expect(text.contains("0000:01:10.0  igbvf"))
    }

    @Test func settingARestoreCouldNotPutBackIsAWarning() throws {
        let body = """
            {"vf":\(ControlFixture.vfJSON),"results":[{"setting":"mac","outcome":"applied"},\
            {"setting":"trust","outcome":"skipped","detail":"the original value was not reported by the driver"}]}
            """
        #expect(
            ResultsText.notes(try report(body), vf: ControlFixture.vfAddress) == [
                "warning: 0000:01:10.0: trust was not restored: the original value was not reported by the driver"
            ])
    }

    /// A newer daemon's setting groups and outcomes are shown, not refused.
    @Test func unknownSettingsAndOutcomesAreShownAsSent() throws {
        let body = #"{"vf":\#(ControlFixture.vfJSON),"results":[{"setting":"rss","outcome":"deferred"}]}"#
        #expect(
            ResultsText.settingResults(try report(body).results) == "SETTING  OUTCOME   DETAIL\nrss      deferred  -\n")
    }
}
