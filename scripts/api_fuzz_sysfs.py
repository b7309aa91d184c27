"""A fake sysfs tree for sriovd, and a small simulated kernel behind it.

Used by scripts/api_fuzz.py: sriovd runs with `--sysfs-root` pointing here,
so no real PCI device is read or written. The tree holds one SR-IOV PF,
0000:01:00.0 (an Intel 82576, 8086:10c9, on igb), with sriov_totalvfs=7 and
two VFs (virtfn0 -> 0000:01:10.0, virtfn1 -> 0000:01:10.2, 82576 layout),
each in its own IOMMU group, unbound and without a netdev.

Only the files SysfsTree, HostInventory, SRIOVDeviceControl and
KernelVFHost read or write exist. The simulated kernel (a thread polling
every few ms) makes the write endpoints mean something:

  - sriov_numvfs (a regular file): a new count makes virtfnN links and VF
    folders appear (or go, for 0), bound to igbvf with a netdev when
    sriov_drivers_autoprobe is 1, as the kernel does;
  - bus/pci/drivers_probe (a FIFO): binds the device to the driver its
    driver_override names, or, without one, to its own driver (igbvf for a
    VF, unless its PF has autoprobe off);
  - bus/pci/drivers/<name>/unbind (FIFOs): unbinds.

Writable attributes that are read back (sriov_numvfs, driver_override,
sriov_drivers_autoprobe) are regular files, which sriovd writes without
O_TRUNC like sysfs; the kernel's view of them is reconstructed from what a
write leaves (see `_override_value`).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import threading
import time

PF = "0000:01:00.0"
TOTAL_VFS = 7
INITIAL_VFS = 2
DRIVERS = ("igb", "igbvf", "vfio-pci")
ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")


def vf_address(index: int) -> str:
    """82576 layout: 01:10.0, 10.2, 10.4, 10.6, 11.0, ..."""
    devfn = 0x10 * 8 + index * 2
    return f"0000:01:{devfn // 8:02x}.{devfn % 8}"


class FakeSysfs:
    def __init__(self, root: str, pf_netdev_ifindex: int | None, autoprobe: bool = True):
        self.root = root
        self.pf_netdev_ifindex = pf_netdev_ifindex
        self.initial_autoprobe = autoprobe
        self.devices = os.path.join(root, "bus/pci/devices")
        self.drivers = os.path.join(root, "bus/pci/drivers")
        self.probe_path = os.path.join(root, "bus/pci/drivers_probe")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: list[tuple[str, int]] = []  # (name, read fd), unbind FIFOs first
        self._keepalive: list[int] = []
        self._numvfs = INITIAL_VFS
        self._next_ifindex = 100
        self.events: list[str] = []
        self.errors: list[str] = []

    # MARK: building

    def build(self) -> None:
        os.makedirs(self.devices)
        os.makedirs(os.path.join(self.root, "kernel/iommu_groups"))
        for name in DRIVERS:
            folder = os.path.join(self.drivers, name)
            os.makedirs(folder)
            os.mkfifo(os.path.join(folder, "unbind"))
        os.mkfifo(self.probe_path)

        pf = self._dev(PF)
        os.makedirs(pf)
        self._put(f"{pf}/vendor", "0x8086\n")
        self._put(f"{pf}/device", "0x10c9\n")
        self._put(f"{pf}/class", "0x020000\n")
        self._put(f"{pf}/numa_node", "0\n")
        self._put(f"{pf}/driver_override", "(null)\n")
        self._put(f"{pf}/sriov_totalvfs", f"{TOTAL_VFS}\n")
        self._put(f"{pf}/sriov_numvfs", f"{INITIAL_VFS}\n")
        self._put(f"{pf}/sriov_drivers_autoprobe", "1\n" if self.initial_autoprobe else "0\n")
        self._put(f"{pf}/sriov_vf_device", "10ca\n")
        self._iommu_group(PF, 1)
        self._bind(PF, "igb", netdev=False)
        if self.pf_netdev_ifindex is not None:
            # sriovd reads VF settings from the PF's netdev over rtnetlink; in
            # the daemon's private network namespace ifindex 1 is its own
            # loopback, which has no VFs (reads: nothing reported; writes:
            # EOPNOTSUPP, i.e. "unsupported").
            os.makedirs(f"{pf}/net/lo")
            self._put(f"{pf}/net/lo/ifindex", f"{self.pf_netdev_ifindex}\n")
        for index in range(INITIAL_VFS):
            self._create_vf(index, autoprobe=False)

    def _dev(self, address: str) -> str:
        return os.path.join(self.devices, address)

    @staticmethod
    def _put(path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    @staticmethod
    def _read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return None

    def _iommu_group(self, address: str, group: int) -> None:
        folder = os.path.join(self.root, f"kernel/iommu_groups/{group}/devices")
        os.makedirs(folder, exist_ok=True)
        os.symlink(f"../../../../kernel/iommu_groups/{group}", f"{self._dev(address)}/iommu_group")
        os.symlink(f"../../../../bus/pci/devices/{address}", f"{folder}/{address}")

    def _create_vf(self, index: int, autoprobe: bool) -> None:
        address = vf_address(index)
        folder = self._dev(address)
        os.makedirs(folder)
        self._put(f"{folder}/vendor", "0x8086\n")
        self._put(f"{folder}/device", "0x10ca\n")
        self._put(f"{folder}/class", "0x020000\n")
        self._put(f"{folder}/numa_node", "0\n")
        self._put(f"{folder}/driver_override", "(null)\n")
        self._put(f"{folder}/reset", "")
        os.symlink(f"../{PF}", f"{folder}/physfn")
        self._iommu_group(address, 100 + index)
        os.symlink(f"../{address}", f"{self._dev(PF)}/virtfn{index}")
        if autoprobe:
            self._bind(address, "igbvf", netdev=True)

    def _remove_vf(self, index: int) -> None:
        address = vf_address(index)
        group = os.path.join(self.root, f"kernel/iommu_groups/{100 + index}")
        for path in (f"{self._dev(PF)}/virtfn{index}",):
            if os.path.islink(path):
                os.unlink(path)
        shutil.rmtree(group, ignore_errors=True)
        shutil.rmtree(self._dev(address), ignore_errors=True)

    def _bind(self, address: str, driver: str, netdev: bool) -> None:
        os.symlink(f"../../drivers/{driver}", f"{self._dev(address)}/driver")
        if netdev and driver == "igbvf":
            ifindex = self._next_ifindex
            self._next_ifindex += 1
            os.makedirs(f"{self._dev(address)}/net/eth{ifindex}")
            self._put(f"{self._dev(address)}/net/eth{ifindex}/ifindex", f"{ifindex}\n")

    def _unbind(self, address: str) -> None:
        link = f"{self._dev(address)}/driver"
        if os.path.islink(link):
            os.unlink(link)
            if address != PF:
                shutil.rmtree(f"{self._dev(address)}/net", ignore_errors=True)

    def _driver(self, address: str) -> str | None:
        try:
            return os.path.basename(os.readlink(f"{self._dev(address)}/driver"))
        except OSError:
            return None

    # MARK: the simulated kernel

    def start(self) -> None:
        # Unbind FIFOs before drivers_probe: sriovd writes unbind, then probe,
        # so whenever probe data is there, the unbind is too, and it must be
        # handled first.
        for name in DRIVERS:
            path = os.path.join(self.drivers, name, "unbind")
            self._fds.append((f"unbind:{name}", os.open(path, os.O_RDONLY | os.O_NONBLOCK)))
            self._keepalive.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        self._fds.append(("probe", os.open(self.probe_path, os.O_RDONLY | os.O_NONBLOCK)))
        self._keepalive.append(os.open(self.probe_path, os.O_WRONLY | os.O_NONBLOCK))
        self._thread = threading.Thread(target=self._run, name="fake-kernel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for _, fd in self._fds:
            os.close(fd)
        for fd in self._keepalive:
            os.close(fd)

    def _run(self) -> None:
        fds = [fd for _, fd in self._fds]
        while not self._stop.is_set():
            try:
                select.select(fds, [], [], 0.005)
                for name, fd in self._fds:
                    try:
                        data = os.read(fd, 65536).decode(errors="replace")
                    except BlockingIOError:
                        continue
                    for address in ADDRESS.findall(data):
                        if name == "probe":
                            self._probe(address)
                        else:
                            self._unbind_request(name.split(":", 1)[1], address)
                self._poll_numvfs()
            except Exception as error:  # keep simulating; report at the end
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.01)

    def _unbind_request(self, driver: str, address: str) -> None:
        if self._driver(address) == driver:
            self._unbind(address)
            self.events.append(f"unbind {address} from {driver}")

    @staticmethod
    def _override_value(text: str | None) -> str | None:
        """The override a device has, from what sriovd's writes left in the
        file. sriovd writes only "vfio-pci", "none", a driver name or "\\n"
        (clear), without truncating, over "(null)\\n" or an earlier value:
        the first byte tells which one was written last."""
        if not text or text.startswith("(null)") or text.startswith("\n"):
            return None
        if text.startswith("vfio-pci"):
            return "vfio-pci"
        if text.startswith("none"):
            return "none"
        for name in DRIVERS:
            if text.startswith(name):
                return name
        return text.strip()

    def _probe(self, address: str) -> None:
        folder = self._dev(address)
        if not os.path.isdir(folder) or self._driver(address) is not None:
            return
        override_path = f"{folder}/driver_override"
        override = self._override_value(self._read(override_path))
        # Tidy the file as the kernel would show it (sriovd is polling the
        # driver link now, under the VF's lock: it does not write the file).
        self._put(override_path, f"{override}\n" if override else "(null)\n")
        if override == "none":
            return
        if override is not None:
            if override in DRIVERS:
                self._bind(address, override, netdev=True)
                self.events.append(f"probe {address}: bound to {override} (override)")
            return
        is_vf = os.path.islink(f"{folder}/physfn")
        autoprobe = (self._read(f"{self._dev(PF)}/sriov_drivers_autoprobe") or "1").startswith("1")
        if is_vf and not autoprobe:
            return
        self._bind(address, "igbvf" if is_vf else "igb", netdev=True)
        self.events.append(f"probe {address}: bound to its own driver")

    def _poll_numvfs(self) -> None:
        path = f"{self._dev(PF)}/sriov_numvfs"
        text = self._read(path) or ""
        match = re.match(r"\s*(\d+)", text)
        if not match:
            return
        count = int(match.group(1))
        if text == f"{count}\n" and count == self._numvfs:
            return
        # sriovd is waiting for the links now (under the PF's lock).
        self._put(path, f"{count}\n")
        if count == self._numvfs or count > TOTAL_VFS:
            return
        if count == 0:
            for index in range(self._numvfs):
                self._remove_vf(index)
        elif self._numvfs == 0:
            autoprobe = (self._read(f"{self._dev(PF)}/sriov_drivers_autoprobe") or "1").startswith("1")
            for index in range(count):
                self._create_vf(index, autoprobe=autoprobe)
        else:
            # The kernel refuses nonzero-to-nonzero (EBUSY); sriovd goes
            # through 0. A regular file cannot refuse: record it.
            self.errors.append(f"sriov_numvfs written {self._numvfs} -> {count} without going through 0")
            return
        self.events.append(f"sriov_numvfs {self._numvfs} -> {count}")
        self._numvfs = count

    # MARK: snapshots

    def snapshot(self) -> dict[str, str]:
        """Every file's content and every link's target under the root (FIFOs
        by name only): what a rejected request must leave as it was."""
        out: dict[str, str] = {}
        for folder, dirs, files in os.walk(self.root):
            for name in sorted(dirs + files):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, self.root)
                if os.path.islink(path):
                    out[rel] = "-> " + os.readlink(path)
                elif os.path.isdir(path):
                    out[rel] = "dir"
                elif os.path.isfile(path):
                    out[rel] = self._read(path) or ""
                else:
                    out[rel] = "fifo"
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        return out
