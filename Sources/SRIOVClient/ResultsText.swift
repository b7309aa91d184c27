import SRIOVCore

/// How sriovctl shows the outcome of a change to a VF to a person: what
/// happened to each setting, then the VF as it is now. Scripts use the JSON.
public enum ResultsText {
    /// SETTING, OUTCOME, DETAIL: one row per setting group, in the daemon's order.
    public static func settingResults(_ results: [SRIOVClient.SettingResult]) -> String {
        var table = TextTable([.init("SETTING"), .init("OUTCOME"), .init("DETAIL")])
        for result in results {
            table.append([result.setting.rawValue, result.outcome.rawValue, result.detail])
        }
        return table.rendered()
    }

    /// The results, then the VF as `sriovctl vfs` shows it (when the daemon
    /// sent it: a failed change has no VF). `noResults` is said instead of an
    /// empty table, e.g. for a restore of a VF that sriovd never changed.
    public static func vfChange(_ report: SRIOVClient.VFChangeReport, noResults: String) -> String {
        var text = report.results.isEmpty ? noResults + "\n" : settingResults(report.results)
        if let vf = report.vf {
            text += "\n" + InventoryText.virtualFunctions([vf])
        }
        return text
    }

    /// Lines for stderr about results that are not failures but need saying:
    /// a setting the driver cannot do, one a restore could not put back.
    /// Failures are the caller's error message.
    public static func notes(_ report: SRIOVClient.VFChangeReport, vf address: PCIAddress) -> [String] {
        var lines: [String] = []
        for result in report.results(.unsupported) {
            // The driver's words are in the table's DETAIL column, and in the JSON.
            lines.append(
                "note: \(address): \(result.setting) was left as it was: the VF's driver does not support it "
                    + "(not an error)")
        }
        for result in report.results(.skipped) {
            lines.append(
                "warning: \(address): \(result.setting) was not restored"
                    + (result.detail.map { ": \($0)" } ?? ""))
        }
        return lines
    }
}
