import SRIOVCore

/// What entries of one file must agree on, once each entry has been read:
/// one entry per PF, unique pool names, pools that do not share VFs, `[[vf]]`
/// entries that name a declared PF and a VF it will have, one entry and one
/// MAC per VF. Entries whose own keys were wrong are checked as far as they
/// could be read.
struct ConfigurationConsistency {
    typealias PFEntry = ConfigurationDecoder.PFEntry
    typealias PoolEntry = ConfigurationDecoder.PoolEntry
    typealias VFEntry = ConfigurationDecoder.VFEntry

    let diagnostics: ConfigurationDiagnostics

    func check(pfs: [PFEntry], vfs: [VFEntry]) {
        checkPFsAreDistinct(pfs)
        checkPools(pfs)
        checkVFs(vfs, against: pfs)
    }

    private func checkPFsAreDistinct(_ pfs: [PFEntry]) {
        var earlier: [PFEntry] = []
        for pf in pfs {
            guard let match = pf.match else { continue }
            if let first = earlier.first(where: { Self.overlap($0.match!.value, match.value) }) {
                let what: String
                if case .pciAddress(let address) = match.value {
                    what = "\(address) is already managed by"
                } else {
                    what = "matches the same PFs as"
                }
                diagnostics.report(
                    match.key, at: match.position,
                    "\(what) \(first.table.path) (line \(first.table.position.line)); merge the two entries")
            }
            earlier.append(pf)
        }
    }

    /// Two matches that can select the same PF without looking at the hardware.
    static func overlap(_ a: SRIOVConfiguration.PFMatch, _ b: SRIOVConfiguration.PFMatch) -> Bool {
        switch (a, b) {
        case (.pciAddress(let x), .pciAddress(let y)):
            return x == y
        case (.ids(let v1, let d1, let i1), .ids(let v2, let d2, let i2)):
            return v1 == v2 && d1 == d2 && (i1 == nil || i2 == nil || i1 == i2)
        default:
            return false
        }
    }

    private func checkPools(_ pfs: [PFEntry]) {
        var names: [String: PoolEntry] = [:]
        for pf in pfs {
            var earlier: [PoolEntry] = []
            for pool in pf.pools {
                if let name = pool.name {
                    if let first = names[name.value] {
                        diagnostics.report(
                            name.key, at: name.position,
                            "pool \(TOMLValue.quoted(name.value)) is already defined by \(first.table.path)"
                                + " (line \(first.table.position.line)); pool names are unique")
                    } else {
                        names[name.value] = pool
                    }
                }
                if let vfs = pool.vfs, let numVFs = pf.numVFs?.value, let last = vfs.value.last, last >= numVFs {
                    let existing = numVFs == 0 ? "it has no VFs" : "its VFs are 0-\(numVFs - 1)"
                    diagnostics.report(
                        vfs.key, at: vfs.position,
                        "VF \(last) does not exist: the PF is given num_vfs = \(numVFs), so \(existing)")
                }
                checkOverlap(of: pool, with: earlier)
                earlier.append(pool)
            }
        }
    }

    /// A VF belongs to at most one pool of its PF.
    private func checkOverlap(of pool: PoolEntry, with earlier: [PoolEntry]) {
        // A vfs that did not parse was reported already.
        func isAllVFs(_ p: PoolEntry) -> Bool { p.table.value("vfs") == nil }
        for other in earlier where other.vfs != nil || isAllVFs(other) {
            let otherName =
                "pool \(other.name.map { TOMLValue.quoted($0.value) } ?? other.table.path)"
                + " (line \(other.table.position.line))"
            if let vfs = pool.vfs {
                if let otherVFs = other.vfs {
                    if let shared = vfs.value.firstCommonIndex(with: otherVFs.value) {
                        diagnostics.report(
                            vfs.key, at: vfs.position,
                            "VF \(shared) is also in \(otherName); a VF belongs to at most one pool")
                        return
                    }
                } else {
                    diagnostics.report(
                        vfs.key, at: vfs.position,
                        "overlaps \(otherName), which takes every VF of the PF because it has no vfs;"
                            + " give each pool a vfs range")
                    return
                }
            } else if isAllVFs(pool) {
                diagnostics.report(
                    pool.table.path, at: pool.table.position,
                    "this pool has no vfs, so it takes every VF of the PF, but \(otherName) has VFs of it too;"
                        + " give each pool a vfs range")
                return
            }
        }
    }

    private struct VFKey: Hashable {
        var pf: PCIAddress
        var index: Int
    }

    private func checkVFs(_ vfs: [VFEntry], against pfs: [PFEntry]) {
        var byAddress: [PCIAddress: PFEntry] = [:]
        var declaredByIDs = false
        for pf in pfs {
            switch pf.match?.value {
            case .pciAddress(let address): byAddress[address] = byAddress[address] ?? pf
            case .ids: declaredByIDs = true
            case nil: break
            }
        }
        var seen: [VFKey: VFEntry] = [:]
        var macs: [MACAddress: VFEntry] = [:]
        for vf in vfs {
            if let pf = vf.pf {
                if let owner = byAddress[pf.value] {
                    if let index = vf.index, let numVFs = owner.numVFs?.value, index.value >= numVFs {
                        diagnostics.report(
                            index.key, at: index.position,
                            "VF \(index.value) does not exist: \(owner.table.path) (line \(owner.table.position.line))"
                                + " gives \(pf.value) num_vfs = \(numVFs)")
                    }
                } else {
                    let also = declaredByIDs ? " (a PF matched by vendor_device cannot be named here)" : ""
                    diagnostics.report(
                        pf.key, at: pf.position,
                        "\(pf.value) is not declared: add a [[pf]] entry with pci = \"\(pf.value)\"\(also)")
                }
                if let index = vf.index {
                    let key = VFKey(pf: pf.value, index: index.value)
                    if let first = seen[key] {
                        diagnostics.report(
                            index.key, at: index.position,
                            "VF \(index.value) of \(pf.value) is already configured by \(first.table.path)"
                                + " (line \(first.table.position.line)); merge the two entries")
                    } else {
                        seen[key] = vf
                    }
                }
            }
            if let mac = vf.config.mac, let position = vf.macPosition {
                if let first = macs[mac] {
                    diagnostics.report(
                        vf.table.key("mac"), at: position,
                        "\(mac) is already the MAC of \(first.table.path) (line \(first.table.position.line));"
                            + " each VF needs its own")
                } else {
                    macs[mac] = vf
                }
            }
        }
    }
}
