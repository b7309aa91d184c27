import SRIOVCore
import Testing

@testable import SRIOVClient

@Suite("What assignments show a person")
struct AssignmentTextTests {
    func decoded<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try SRIOVClient.Response(status: 200, reason: "OK", body: Array(json.utf8)).decode(T.self)
    }

    @Test func tableHasOneRowPerNICByVMThenNICWithWhatTheVMIsGiven() throws {
        let list = try decoded(SRIOVClient.AssignmentList.self, AssignmentFixture.listJSON).assignments
        #expect(
            AssignmentText.assignments(list) == """
                VM   NIC   VF            PF            POOL  DRIVER    DEVICE        STATE      VLAN           MAC
                vm1  net0  0000:01:10.0  0000:01:00.0  fast  vfio-pci  /dev/vfio/12  assigned   100            52:54:00:aa:00:01
                vm1  net1  0000:01:10.2  0000:01:00.0  fast  vfio-pci  -             releasing  200 (802.1ad)  -
                vm2  eth1  0000:02:02.1  0000:02:00.0  -     host      enp2s0v3      assigned   -              -

                """)
    }

    @Test func detailListsTheVFTheDeviceAndOnlyTheSettingsAskedFor() {
        #expect(
            AssignmentText.detail(AssignmentFixture.vfio) == """
                VM           vm1
                NIC          net0
                State        assigned
                VF           0000:01:10.0 (index 0)
                PF           0000:01:00.0
                Pool         fast
                Driver       vfio-pci (before: igbvf)
                VFIO device  /dev/vfio/12
                IOMMU group  12
                NUMA node    0
                MAC          52:54:00:aa:00:01
                VLAN         100
                QoS          3
                Spoof check  on
                Created      \(AssignmentFixture.createdAt)
                Updated      \(AssignmentFixture.updatedAt)

                """)
    }

    @Test func detailOfAHostDriverAssignmentWithoutSettingsSaysSo() throws {
        let text = AssignmentText.detail(try decoded(SRIOVClient.Assignment.self, AssignmentFixture.hostJSON))
        #expect(text.contains("\nDriver       host (before: iavf)\nNetdev       enp2s0v3\n"))
        #expect(text.contains("\nPool         -\n"))
        #expect(text.contains("\nSettings     none asked for: the VF keeps its own\n"))
    }

    @Test func newAssignmentSaysAssignedAndWhatTheVMOpens() {
        let text = AssignmentText.assigned(.created(AssignmentFixture.vfio))
        #expect(
            text.hasPrefix(
                "Assigned VF 0000:01:10.0 (VF 0 of 0000:01:00.0) to vm1/net0: vfio-pci, /dev/vfio/12\n\nVM           vm1\n"))
    }

    @Test func existingAssignmentSaysNothingWasChanged() throws {
        let host = try decoded(SRIOVClient.Assignment.self, AssignmentFixture.hostJSON)
        #expect(
            AssignmentText.headline(.existing(host))
                == "vm2/eth1 already has VF 0000:02:02.1 (VF 3 of 0000:02:00.0) from this same request; "
                + "nothing was changed: host driver, netdev enp2s0v3")
    }

    @Test func releaseSaysWhichDriverTheVFIsBackOn() throws {
        let released = try decoded(SRIOVClient.Assignment.self, AssignmentFixture.releasedJSON)
        #expect(
            AssignmentText.released(released)
                == "Released VF 0000:01:10.0 (VF 0 of 0000:01:00.0) from vm1/net0: "
                + "its settings are restored and it is back on igbvf.\n")
        var driverless = released
        driverless.previousDriver = nil
        #expect(AssignmentText.released(driverless).hasSuffix("its settings are restored and it has no driver, as before.\n"))
    }

    @Test func changeShowsTheResultsThenTheAssignment() throws {
        let report = try decoded(SRIOVClient.AssignmentChangeReport.self, AssignmentFixture.changedJSON)
        let text = AssignmentText.changed(report)
        #expect(
            text.hasPrefix(
                """
                SETTING    OUTCOME      DETAIL
                vlan       applied      -
                linkState  unsupported  \(ControlFixture.unsupportedLinkState)

                VM           vm1

                """))
        #expect(text.contains("\nVLAN         300\n"))
        #expect(
            ResultsText.notes(report.vfChangeReport, vf: report.assignment.vf) == [
                "note: 0000:01:10.0: linkState was left as it was: the VF's driver does not support it (not an error)"
            ])
    }
}
