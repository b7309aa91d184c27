import Foundation
import SRIOVCore
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// What sriovd asks a hook to do to a guest.
public enum HookAction: String, Sendable, Codable, CaseIterable {
    /// Make the VF present in the guest (plug it; already there is fine).
    case attach
    /// Take the VF out of the guest (unplug it; already gone is fine).
    case detach
    /// Bring the standby (paravirtual) NIC's link up.
    case standbyUp = "standby-up"
    /// Move the guest's traffic to `steerTo` (`standby` or `vf`).
    case steer
}

/// The one JSON object a hook reads on its standard input.
public struct HookRequest: Sendable, Codable, Equatable {
    public struct VF: Sendable, Codable, Equatable {
        /// The VF's PCI address.
        public var pci: String
        public var pf: String
        public var index: Int
        public var mac: String?
        /// The VF's network interface on the host, when it has one.
        public var netdev: String?
        /// `/dev/vfio/N` when the VF is bound to vfio-pci.
        public var vfioDevice: String?

        public init(pci: String, pf: String, index: Int, mac: String?, netdev: String?, vfioDevice: String?) {
            self.pci = pci
            self.pf = pf
            self.index = index
            self.mac = mac
            self.netdev = netdev
            self.vfioDevice = vfioDevice
        }
    }

    public var action: HookAction
    public var vm: String
    public var nic: String
    public var vf: VF
    /// For `steer`: `standby` or `vf`.
    public var steerTo: String?

    public init(action: HookAction, vm: String, nic: String, vf: VF, steerTo: String? = nil) {
        self.action = action
        self.vm = vm
        self.nic = nic
        self.vf = vf
        self.steerTo = steerTo
    }
}

/// The one JSON object a hook writes on its standard output.
public struct HookResult: Sendable, Codable, Equatable {
    public enum Outcome: String, Sendable, Codable {
        /// Done now.
        case done
        /// Nothing to do: it was so already.
        case unchanged
        /// The hook has no way to do this (for `steer`: no lever): not an error.
        case unsupported
    }

    public var result: Outcome
    /// What the hook wants said about it (shown in the migration timeline).
    public var message: String?

    public init(result: Outcome, message: String? = nil) {
        self.result = result
        self.message = message
    }
}

/// Why running a hook failed, with what it printed on standard error.
public struct HookError: Error, Sendable, CustomStringConvertible {
    public var command: String
    public var action: HookAction
    public var reason: String
    /// The end of what the hook wrote on standard error.
    public var stderr: String

    public var description: String {
        var text = "hook \(command) failed to \(action.rawValue): \(reason)"
        let tail = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if !tail.isEmpty { text += "; it said: \(tail)" }
        return text
    }
}

/// A hypervisor reached through an operator's executable (libvirt's virsh,
/// cloud-hypervisor's ch-remote, ...): one JSON request on its standard
/// input, one JSON result on its standard output, exit status 0 for success,
/// within a deadline (then SIGTERM, and SIGKILL two seconds later).
public struct HookCommand: Sendable {
    public var path: String
    public var deadline: Duration
    /// The most of standard output and standard error kept.
    static let outputLimit = 64 * 1024

    public init(path: String, deadline: Duration = .seconds(30)) {
        self.path = path
        self.deadline = deadline
    }

    /// Checks that `path` names an executable file: done when a NIC with a
    /// hook is assigned, so a typo is refused before anything changes.
    public static func validate(path: String, field: String) throws(ValidationError) {
        guard path.hasPrefix("/") else {
            throw ValidationError(field: field, value: path, reason: "must be an absolute path to an executable")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ValidationError(field: field, value: path, reason: "no such file")
        }
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError(field: field, value: path, reason: "is not executable")
        }
    }

    /// Runs the hook for `request` and returns its result.
    public func run(_ request: HookRequest) async throws(HookError) -> HookResult {
        let input: String
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            input = String(decoding: try encoder.encode(request), as: UTF8.self) + "\n"
        } catch {
            throw failure(request, "cannot encode the request: \(error)")
        }
        let finished: Finished
        do {
            finished = try await withThrowingTaskGroup(of: Finished?.self) { group in
                group.addTask { try await self.execute(input: input) }
                group.addTask {
                    try await Task.sleep(for: self.deadline)
                    return nil
                }
                let first = try await group.next()!
                group.cancelAll()
                guard let first else { throw Timeout() }
                return first
            }
        } catch is Timeout {
            throw failure(request, "it did not finish within \(deadline) and was stopped")
        } catch {
            throw failure(request, "cannot run it: \(error)")
        }
        switch finished.status {
        case .exited(0): break
        case .exited(let code):
            throw failure(request, "it exited with status \(code)", stderr: finished.stderr)
        case .signaled(let signal):
            throw failure(request, "it was killed by signal \(signal)", stderr: finished.stderr)
        }
        let text = finished.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else {
            throw failure(request, "it printed no result (one JSON object such as {\"result\":\"done\"} was expected)", stderr: finished.stderr)
        }
        do {
            return try JSONDecoder().decode(HookResult.self, from: Data(text.utf8))
        } catch {
            throw failure(
                request,
                "its output is not a result object ({\"result\":\"done\"|\"unchanged\"|\"unsupported\",\"message\":...}): \(text.prefix(200))",
                stderr: finished.stderr)
        }
    }

    private struct Timeout: Error {}

    private struct Finished: Sendable {
        var status: TerminationStatus
        var stdout: String
        var stderr: String
    }

    private func execute(input: String) async throws -> Finished {
        var options = PlatformOptions()
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        let result = try await Subprocess.run(
            .path(FilePath(path)), platformOptions: options, input: .string(input),
            output: .string(limit: Self.outputLimit), error: .string(limit: Self.outputLimit))
        return Finished(
            status: result.terminationStatus, stdout: result.standardOutput,
            stderr: String(result.standardError.suffix(2000)))
    }

    private func failure(_ request: HookRequest, _ reason: String, stderr: String = "") -> HookError {
        HookError(command: path, action: request.action, reason: reason, stderr: stderr)
    }
}
