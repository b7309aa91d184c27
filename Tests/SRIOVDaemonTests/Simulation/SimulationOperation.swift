import Foundation
import SRIOVAPI
import SRIOVCore

/// Every random choice of the simulation is drawn from one of these
/// (SplitMix64, the fuzz tests' generator), so a seed names one run,
/// whatever the machine.
struct SplitMix64 {
    private var source: TOMLFuzzSeededGenerator

    init(seed: UInt64) { source = TOMLFuzzSeededGenerator(state: seed) }

    mutating func next() -> UInt64 { source.next() }

    /// 0 ..< n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// True `percent` times in a hundred.
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// One step of a simulated run: an API operation, a host event or a
/// restart, on one of the two daemons (A and B, two hosts sharing the
/// guests), with the faults armed while it runs and where it is cut short by
/// a crash. Operation `index` of a run with seed `s` is drawn from its own
/// generator seeded from (s, index), so a replay is the seed and a list of
/// indices, and dropping operations from a replay leaves the others as
/// they were.
struct SimOperation: Sendable, CustomStringConvertible {
    enum Action: Sendable {
        case assign(vm: Int, nic: Int, pf: Int, driver: AssignmentDriver, config: VFConfig)
        case change(vm: Int, nic: Int, config: VFConfig)
        case release(vm: Int, nic: Int)
        case incoming(vm: Int, nics: [Int], pf: Int, vlan: Int)
        case prepare(vm: Int)
        case complete(vm: Int)
        case abort(vm: Int)
        /// `PUT .../numVFs` through the API (force: removes VFs in use).
        case numVFs(pf: Int, count: Int, force: Bool)
        /// The PF's driver unloaded: its VFs are gone, and the guests lose them.
        case pfLost(pf: Int)
        /// The PF's driver loaded again (no VFs).
        case pfBack(pf: Int)
        /// One setting of an assigned VF changed behind the daemon's back.
        case drift(pf: Int, pick: Int)
        /// The daemon is killed between operations and started again.
        case restart
    }

    /// What goes wrong while the operation runs (cleared after it, so the
    /// recovery that follows a crash runs on a healthy host).
    enum Fault: Sendable, CustomStringConvertible {
        /// The driver refuses this setting (EINVAL).
        case refuse(VFSettingGroup)
        /// `sriov_numvfs` answers EBUSY.
        case busyNumVFs
        /// Binding a driver answers EBUSY.
        case busyBind
        /// A call to the guest fails.
        case guest(String)
        /// Every host call is slow to answer (it yields before and after).
        case slow
        /// A written MAC becomes visible only after this many reads (iavf).
        case lateMAC(reads: Int)
        /// The PFs have no carrier: igb refuses any TX rate, even 0 (it
        /// checks the link first), so a VF with a rate can be neither
        /// programmed nor restored meanwhile.
        case linkDown

        var description: String {
            switch self {
            case .refuse(let group): "driver refuses \(group.rawValue)"
            case .busyNumVFs: "numvfs EBUSY"
            case .busyBind: "bind EBUSY"
            case .guest(let call): "guest fails \(call)"
            case .slow: "slow host"
            case .lateMAC(let reads): "MAC visible after \(reads) reads"
            case .linkDown: "PF links down"
            }
        }
    }

    let index: Int
    /// 0: daemon A, 1: daemon B.
    let daemon: Int
    let action: Action
    let faults: [Fault]
    /// The crash gate (a host call, a guest call, or a named crash point)
    /// where the daemon dies during this operation, counted from 1; nil:
    /// it does not. For `restart`, a crash during the recovery that follows.
    let crashAt: Int?

    static let vms = 3
    static let nics = 3
    /// NICs 0 and 1 of each VM have a failover adapter (and migrate); NIC 2 is a plain VF.
    static func hasFailover(nic: Int) -> Bool { nic < 2 }
    static let pfsPerHost = 2
    static let vfsPerPF = 3

    static func vmName(_ vm: Int) -> String { "vm\(vm)" }
    static func nicName(_ nic: Int) -> String { "net\(nic)" }

    /// The guest's MAC for a NIC (its standby has it too).
    static func mac(vm: Int, nic: Int) -> MACAddress {
        try! MACAddress.parse(String(format: "52:54:00:5a:%02x:%02x", vm, nic), field: "mac")
    }

    static func failover(vm: Int, nic: Int) -> FailoverSpec {
        .netns(namespace: vmName(vm), bond: "bond\(nic)", standby: "veth\(nic)")
    }

    /// Operation `index` of the run seeded with `seed`.
    static func generate(seed: UInt64, index: Int) -> SimOperation {
        var random = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))
        _ = random.next()
        let daemon = random.below(2)
        let vm = random.below(vms)
        let nic = random.below(nics)
        let pf = random.below(pfsPerHost)
        let action: Action
        switch random.below(100) {
        case 0..<22:
            let failover = hasFailover(nic: nic)
            let driver: AssignmentDriver = failover ? .host : random.pick([.host, .vfio])
            action = .assign(
                vm: vm, nic: nic, pf: pf, driver: driver,
                config: config(&random, mac: failover || random.chance(50) ? mac(vm: vm, nic: nic) : nil))
        case 22..<34:
            action = .change(vm: vm, nic: nic, config: config(&random, mac: nil))
        case 34..<45:
            action = .release(vm: vm, nic: nic)
        case 45..<53:
            let nics = random.pick([[0], [1], [0, 1]])
            action = .incoming(vm: vm, nics: nics, pf: pf, vlan: random.below(4))
        case 53..<62:
            action = .prepare(vm: vm)
        case 62..<70:
            action = .complete(vm: vm)
        case 70..<76:
            action = .abort(vm: vm)
        case 76..<80:
            action = .numVFs(pf: pf, count: random.below(vfsPerPF + 1), force: random.chance(25))
        case 80..<83:
            action = .pfLost(pf: pf)
        case 83..<87:
            action = .pfBack(pf: pf)
        case 87..<96:
            action = .drift(pf: pf, pick: random.below(1000))
        default:
            action = .restart
        }
        var faults: [Fault] = []
        if random.chance(15) {
            faults.append(
                random.pick([
                    .refuse(random.pick([.vlan, .mac, .trust, .spoofCheck, .txRate])), .busyNumVFs, .busyBind,
                    .guest(random.pick(["attach", "detach", "steer-vf", "steer-standby", "standby", "wait"])),
                    .slow, .lateMAC(reads: 1 + random.below(4)), .linkDown,
                ]))
        }
        let crashAt = random.chance(10) ? 1 + random.below(10) : nil
        return SimOperation(index: index, daemon: daemon, action: action, faults: faults, crashAt: crashAt)
    }

    /// Settings a request may ask for: few values, so requests repeat and collide.
    private static func config(_ random: inout SplitMix64, mac: MACAddress?) -> VFConfig {
        var config = VFConfig(mac: mac)
        if random.chance(60) {
            config.vlan = try! VLANID(random.below(4))
            if config.vlan != VLANID.none, random.chance(40) { config.qos = try! VLANQoS(random.below(3)) }
        }
        if random.chance(30) { config.spoofCheck = random.chance(50) }
        if random.chance(30) { config.trust = random.chance(50) }
        if random.chance(20) { config.maxTxRate = random.pick([0, 100, 1000]) }
        return config
    }

    /// The action's name: `assign`, `pfBack`...
    var kind: String {
        switch action {
        case .assign: "assign"
        case .change: "change"
        case .release: "release"
        case .incoming: "incoming"
        case .prepare: "prepare"
        case .complete: "complete"
        case .abort: "abort"
        case .numVFs: "numVFs"
        case .pfLost: "pfLost"
        case .pfBack: "pfBack"
        case .drift: "drift"
        case .restart: "restart"
        }
    }

    var description: String {
        let host = daemon == 0 ? "A" : "B"
        let what: String
        switch action {
        case .assign(let vm, let nic, let pf, let driver, let config):
            what = "assign \(Self.vmName(vm))/\(Self.nicName(nic)) pf\(pf) \(driver) \(Self.text(config))"
        case .change(let vm, let nic, let config): what = "change \(Self.vmName(vm))/\(Self.nicName(nic)) \(Self.text(config))"
        case .release(let vm, let nic): what = "release \(Self.vmName(vm))/\(Self.nicName(nic))"
        case .incoming(let vm, let nics, let pf, let vlan):
            what = "incoming \(Self.vmName(vm)) \(nics.map(Self.nicName)) pf\(pf) vlan \(vlan)"
        case .prepare(let vm): what = "prepare \(Self.vmName(vm))"
        case .complete(let vm): what = "complete \(Self.vmName(vm))"
        case .abort(let vm): what = "abort \(Self.vmName(vm))"
        case .numVFs(let pf, let count, let force): what = "numVFs pf\(pf) \(count)\(force ? " force" : "")"
        case .pfLost(let pf): what = "pf\(pf) lost"
        case .pfBack(let pf): what = "pf\(pf) back"
        case .drift(let pf, let pick): what = "drift on pf\(pf) (\(pick))"
        case .restart: what = "restart"
        }
        var text = "#\(index) \(host) \(what)"
        if !faults.isEmpty { text += " [\(faults.map(\.description).joined(separator: ", "))]" }
        if let crashAt { text += " crash at gate \(crashAt)" }
        return text
    }

    private static func text(_ config: VFConfig) -> String {
        VFSettingGroup.allCases.filter { $0.isSet(in: config) }
            .map { "\($0.rawValue)=\($0.summary(of: config, naming: .api, missing: "-"))" }.joined(separator: " ")
    }
}
