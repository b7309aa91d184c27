import SRIOVAPI
import SRIOVCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// VFs given to VM NICs: `/v1/assignments`. What an orchestrator calls to
/// get a VF for a NIC, change its live settings and give it back.
extension SRIOVClient {
    // The API's assignment values, with the daemon's own naming rules.
    public typealias NICKey = SRIOVCore.NICKey
    public typealias AssignmentDriver = SRIOVCore.AssignmentDriver
    public typealias AssignmentState = SRIOVCore.AssignmentState
    public typealias Assignment = SRIOVCore.Assignment

    /// The answer to `POST /v1/assignments`: a new assignment (201), or the
    /// one the same request made before (200), unchanged.
    public enum AssignOutcome: Hashable, Sendable {
        case created(Assignment)
        case existing(Assignment)

        public var assignment: Assignment {
            switch self {
            case .created(let a), .existing(let a): a
            }
        }

        /// 201 is new; any other 2xx is the assignment as it was.
        public init(response: Response) throws(ClientError) {
            let assignment = try response.checked().decode(Assignment.self)
            self = response.status == 201 ? .created(assignment) : .existing(assignment)
        }
    }

    /// `POST /v1/assignments`: a VF for a VM NIC, from a pool or a PF, with
    /// the driver to hand it over with and the settings to give it.
    public typealias AssignmentRequest = SRIOVAPI.AssignmentRequest

    /// `PATCH /v1/assignments/{vm}/{nic}`: the live settings of an assigned
    /// VF. The MAC is not one: it is the VM's, given when it is assigned.
    public struct AssignmentChange: Hashable, Sendable, Encodable {
        public let config: VFConfig

        /// The options `sriovctl assignment set` takes, in `--help`'s order.
        static let optionNames = VFSettingField.all.filter(\.group.changesLive).map(\.option)

        /// Parses `sriovctl assignment set`'s options as `vf set`'s are. What
        /// depends on the assignment's current settings (`--qos` alone keeps
        /// its VLAN; `--min-tx-rate` alone is checked against its maximum)
        /// is the daemon's to check.
        public init(parsing options: VFChange.Options) throws(UsageError) {
            guard options[.named("mac")!] == nil else {
                throw UsageError(
                    "--mac cannot be changed on an assigned VF: the MAC is given with sriovctl assign; "
                        + "release the NIC and assign it again")
            }
            guard !options.isEmpty else {
                throw UsageError("nothing to change: give at least one of \(Self.optionNames.joined(separator: ", "))")
            }
            let config = try options.parsed()
            // QoS and protocol are checked against a VLAN only when this change sets one.
            var alone = config
            if alone.vlan == nil {
                alone.qos = nil
                alone.vlanProto = nil
            }
            _ = try VFChange(checking: alone)
            self.config = config
        }

        public func encode(to encoder: any Encoder) throws { try config.encode(to: encoder) }
    }

    /// The answer to `PATCH /v1/assignments/{vm}/{nic}`: the assignment
    /// afterwards and what happened to each setting group.
    public typealias AssignmentChangeReport = SRIOVAPI.AssignmentChangeResponse
}

extension SRIOVAPI.AssignmentChangeResponse {
    /// As a VF change report, for `ResultsText`.
    public var vfChangeReport: SRIOVClient.VFChangeReport { .init(vf: nil, results: results) }
}

extension SRIOVAPI.AssignmentRequest {
    /// Where the VF comes from.
    public enum Source: Hashable, Sendable {
        case pool(String)
        case pf(PCIAddress)
    }

    /// The pool or PF asked for; nil unless exactly one of them is.
    public var source: Source? {
        switch (pool, pf) {
        case (let pool?, nil): .pool(pool)
        case (nil, let pf?): .pf(pf)
        default: nil
        }
    }

    /// Parses `sriovctl assign`'s arguments; refusals name the argument or
    /// option. The settings are parsed and checked as `sriovctl vf set`'s
    /// are, but may all be left out.
    public init(parsing options: Options) throws(SRIOVClient.UsageError) {
        let key: NICKey
        let source: Source
        let numaNode: Int?
        let driver: AssignmentDriver
        do throws(ValidationError) {
            key = try NICKey(vm: options.vm, nic: options.nic)
            switch (options.pool, options.pf) {
            case (nil, nil):
                throw ValidationError(
                    field: "--pool", value: "", reason: "or --pf is required: say where the VF comes from")
            case (.some, .some):
                throw ValidationError(
                    field: "--pf", value: options.pf ?? "", reason: "cannot be given with --pool; give one of them")
            case (let pool?, nil):
                source = .pool(try PoolName.checked(pool, field: "--pool"))
            case (nil, let pf?):
                source = .pf(try PCIAddress.parse(pf, field: "--pf"))
            }
            numaNode = try options.numaNode.map { text throws(ValidationError) in
                try OptionText.integer(
                    text, field: "--numa-node", in: 0...Int(Int32.max), expected: "a NUMA node number, 0 or more")
            }
            driver = try options.driver.map { text throws(ValidationError) in
                try AssignmentDriver.parse(text, field: "--driver")
            } ?? .vfio
        } catch {
            throw SRIOVClient.UsageError(error)
        }
        let settings = try SRIOVClient.VFChange(checking: options.settings.parsed())
        var pool: String?
        var pf: PCIAddress?
        switch source {
        case .pool(let name): pool = name
        case .pf(let address): pf = address
        }
        self.init(
            vm: key.vm, nic: key.nic, pool: pool, pf: pf, numaNode: numaNode, driver: driver, config: settings.config)
    }

    /// `sriovctl assign`'s arguments as typed, before parsing. nil: not given.
    public struct Options: Hashable, Sendable {
        public var vm: String
        public var nic: String
        public var pool: String?
        public var pf: String?
        public var numaNode: String?
        public var driver: String?
        public var settings: SRIOVClient.VFChange.Options

        public init(
            vm: String, nic: String, pool: String? = nil, pf: String? = nil, numaNode: String? = nil,
            driver: String? = nil, settings: SRIOVClient.VFChange.Options = .init()
        ) {
            self.vm = vm
            self.nic = nic
            self.pool = pool
            self.pf = pf
            self.numaNode = numaNode
            self.driver = driver
            self.settings = settings
        }
    }
}

extension SRIOVClient {
    /// `POST /v1/assignments`. A different request for a NIC that has a VF,
    /// or no free VF, is `ClientError.api` with status 409 and the daemon's reason.
    public func assign(_ request: AssignmentRequest) async throws(ClientError) -> AssignOutcome {
        try AssignOutcome(response: try await send(.assign(request)))
    }

    /// `GET /v1/assignments`, all or those matching every filter given.
    public func assignments(
        vm: String? = nil, pf: PCIAddress? = nil, pool: String? = nil
    ) async throws(ClientError) -> [Assignment] {
        try await get(.assignments(vm: vm, pf: pf, pool: pool)).decode(AssignmentList.self).assignments
    }

    /// `GET /v1/assignments/{vm}/{nic}`; 404 when the NIC has no VF.
    public func assignment(_ key: NICKey) async throws(ClientError) -> Assignment {
        try await get(.assignment(key)).decode(Assignment.self)
    }

    /// `PATCH /v1/assignments/{vm}/{nic}`. A setting that failed is a 500
    /// naming it: the daemon keeps the assignment as it was recorded.
    public func changeAssignment(
        _ key: NICKey, _ change: AssignmentChange
    ) async throws(ClientError) -> AssignmentChangeReport {
        try await send(.changeAssignment(key, change)).checked().decode(AssignmentChangeReport.self)
    }

    /// `DELETE /v1/assignments/{vm}/{nic}`: the VF's settings restored, its
    /// previous driver back. Answers with the assignment as it was, in state `released`.
    public func release(_ key: NICKey) async throws(ClientError) -> Assignment {
        try await send(.release(key)).checked().decode(Assignment.self)
    }
}

extension SRIOVClient.Endpoint {
    /// Names and PCI addresses need no escaping: their characters are all
    /// allowed in paths and queries as they are.
    public static func assignments(vm: String? = nil, pf: PCIAddress? = nil, pool: String? = nil) -> Self {
        let query = [("vm", vm), ("pf", pf?.description), ("pool", pool)]
            .compactMap { name, value in value.map { "\(name)=\($0)" } }
        return Self(path: "/v1/assignments" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
    }

    public static func assignment(_ key: SRIOVClient.NICKey) -> Self {
        Self(path: "/v1/assignments/\(key.vm)/\(key.nic)")
    }
}

extension SRIOVClient.Request {
    public static func assign(_ request: SRIOVClient.AssignmentRequest) throws(ClientError) -> Self {
        Self(method: .post, path: SRIOVClient.Endpoint.assignments().path, body: try jsonBody(request))
    }

    public static func changeAssignment(
        _ key: SRIOVClient.NICKey, _ change: SRIOVClient.AssignmentChange
    ) throws(ClientError) -> Self {
        Self(method: .patch, path: SRIOVClient.Endpoint.assignment(key).path, body: try jsonBody(change))
    }

    public static func release(_ key: SRIOVClient.NICKey) -> Self {
        Self(method: .delete, path: SRIOVClient.Endpoint.assignment(key).path)
    }
}
