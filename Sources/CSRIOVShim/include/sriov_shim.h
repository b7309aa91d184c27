#ifndef SRIOV_SHIM_H
#define SRIOV_SHIM_H

/*
 * What Swift cannot do itself with libpci and sockets. Only plain C types
 * cross this header: no libpci or libsystemd type leaks into Swift through it.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- libpci */

/* One PCI function as libpci saw it. Names are empty strings when
 * pci.ids (or udev's hwdb) does not know the id, or names were not asked for. */
typedef struct sriov_shim_pci_device {
    int32_t domain;             /* may exceed 16 bits (for example VMD domains) */
    uint8_t bus;
    uint8_t dev;
    uint8_t func;
    uint16_t vendor_id;
    uint16_t device_id;
    uint32_t class_code;        /* base class << 16 | subclass << 8 | prog-if */
    int32_t numa_node;          /* -1 when unknown */
    char vendor_name[128];
    char device_name[256];
} sriov_shim_pci_device;

typedef enum sriov_shim_pci_status {
    SRIOV_SHIM_PCI_OK = 0,
    SRIOV_SHIM_PCI_INIT_FAILED = 1,   /* pci_init: no working access method */
    SRIOV_SHIM_PCI_SCAN_FAILED = 2,   /* pci_scan_bus */
    SRIOV_SHIM_PCI_READ_FAILED = 3,   /* pci_fill_info on one device (error_device) */
    SRIOV_SHIM_PCI_NAMES_FAILED = 4,  /* pci_lookup_name: pci.ids unreadable or corrupt */
    SRIOV_SHIM_PCI_NO_MEMORY = 5,
} sriov_shim_pci_status;

typedef struct sriov_shim_pci_options {
    /* Directory libpci reads instead of /sys/bus/pci; setting it also pins the
     * access method to linux-sysfs. NULL: libpci's default and autodetection. */
    const char *sysfs_path;
    /* pci.ids to read names from. NULL: libpci's default. */
    const char *ids_path;
    /* 0: do not look names up (faster: pci.ids is not parsed). */
    int lookup_names;
} sriov_shim_pci_options;

typedef struct sriov_shim_pci_scan_result {
    sriov_shim_pci_device *devices;   /* malloc'd; release with sriov_shim_pci_scan_free */
    size_t count;
    /* What libpci reported when the scan failed (status != OK). */
    char error[256];
    /* The device being read when status == SRIOV_SHIM_PCI_READ_FAILED. */
    int32_t error_domain;
    uint8_t error_bus;
    uint8_t error_dev;
    uint8_t error_func;
    /* Set when the name lookup failed: the scan still succeeds, devices
     * found before and after carry no names. */
    char names_error[256];
    /* libpci warnings, one per line, truncated to fit. */
    char warnings[512];
} sriov_shim_pci_scan_result;

/* Scans the PCI bus. Never exits the process: libpci's error handler (whose
 * default calls exit(1)) is replaced for the duration of the call.
 * Returns a sriov_shim_pci_status; on failure `out->devices` is NULL. */
int sriov_shim_pci_scan(const sriov_shim_pci_options *options, sriov_shim_pci_scan_result *out);

/* Frees what sriov_shim_pci_scan allocated; safe on a failed or zeroed result. */
void sriov_shim_pci_scan_free(sriov_shim_pci_scan_result *result);

/* Names for one vendor/device pair (ids_path NULL: libpci's default).
 * Unknown ids leave the buffers empty. Returns a sriov_shim_pci_status
 * (OK, NAMES_FAILED or NO_MEMORY); `error` receives libpci's message. */
int sriov_shim_pci_lookup_names(const char *ids_path, uint16_t vendor_id, uint16_t device_id,
                                char *vendor_name, size_t vendor_name_size,
                                char *device_name, size_t device_name_size,
                                char *error, size_t error_size);

/* --------------------------------------------------------------- xattrs */

/* setxattr(2) (<sys/xattr.h> is not in Swift's Glibc module). Returns 0, or
 * a negative errno value. */
int sriov_shim_set_xattr(const char *path, const char *name, const void *value, size_t size);

/* ---------------------------------------------------------- namespaces */

/* setns(fd, CLONE_NEWNET) for the calling thread (<sched.h> declares setns
 * only with _GNU_SOURCE, which Swift's Glibc module does not set). Returns
 * 0, or a negative errno value. */
int sriov_shim_enter_net_namespace(int fd);

#endif
