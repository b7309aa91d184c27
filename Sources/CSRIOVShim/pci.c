/*
 * libpci without exit(1).
 *
 * libpci reports errors by calling pci_access->error, a noreturn function
 * whose default prints and exits. Here it is replaced by a handler that
 * longjmps back to the sriov_shim_* call that is running on this thread.
 * Every setjmp and every longjmp happens in C frames of this file: no Swift
 * frame is ever jumped over.
 */
#include "sriov_shim.h"

#include <pci/pci.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpci's handlers get no context pointer: the running call keeps its state
 * in thread-local storage (static, so setjmp's rules on automatic variables
 * do not apply to it). */
struct shim_pci_context {
    jmp_buf *landing;        /* where the error handler jumps; NULL: no call armed */
    char message[256];       /* the last error libpci reported */
    char *warnings;          /* where warnings are appended, or NULL */
    size_t warnings_size;
};

static _Thread_local struct shim_pci_context shim_pci_ctx;

static void shim_pci_trim(char *text)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
}

static void shim_pci_error(char *msg, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void shim_pci_warning(char *msg, ...) __attribute__((format(printf, 1, 2)));
static void shim_pci_debug(char *msg, ...) __attribute__((format(printf, 1, 2)));

static void shim_pci_error(char *msg, ...)
{
    va_list ap;

    if (shim_pci_ctx.landing == NULL)
        abort(); /* libpci called outside an armed sriov_shim_* call: a bug here */
    va_start(ap, msg);
    vsnprintf(shim_pci_ctx.message, sizeof shim_pci_ctx.message, msg, ap);
    va_end(ap);
    shim_pci_trim(shim_pci_ctx.message);
    longjmp(*shim_pci_ctx.landing, 1);
}

static void shim_pci_warning(char *msg, ...)
{
    char line[256];
    va_list ap;
    size_t used;

    if (shim_pci_ctx.warnings == NULL || shim_pci_ctx.warnings_size == 0)
        return;
    va_start(ap, msg);
    vsnprintf(line, sizeof line, msg, ap);
    va_end(ap);
    shim_pci_trim(line);
    used = strlen(shim_pci_ctx.warnings);
    if (used + 1 < shim_pci_ctx.warnings_size)
        snprintf(shim_pci_ctx.warnings + used, shim_pci_ctx.warnings_size - used, "%s\n", line);
}

static void shim_pci_debug(char *msg, ...)
{
    (void)msg; /* debugging stays off; libpci's own default would print to stdout */
}

/* pci_alloc plus our handlers, with this thread's context armed for warnings.
 * pci_alloc itself runs before any handler can be installed. */
static struct pci_access *shim_pci_open(char *warnings, size_t warnings_size)
{
    struct pci_access *acc = pci_alloc();

    if (acc == NULL)
        return NULL;
    acc->error = shim_pci_error;
    acc->warning = shim_pci_warning;
    acc->debug = shim_pci_debug;
    acc->debugging = 0;
    /* The name cache holds DNS look-up results (~/.pciids-cache); a daemon
     * never asks DNS, so it has no business reading root's home for it. */
    acc->id_lookup_mode &= ~(unsigned int)PCI_LOOKUP_CACHE;
    shim_pci_ctx.landing = NULL;
    shim_pci_ctx.message[0] = '\0';
    shim_pci_ctx.warnings = warnings;
    shim_pci_ctx.warnings_size = warnings_size;
    return acc;
}

/* pci_cleanup, which may report errors too; if it does, the access structure
 * leaks, which beats exiting. Disarms this thread's context. */
static void shim_pci_close(struct pci_access *acc)
{
    jmp_buf landing;

    if (setjmp(landing) == 0) {
        shim_pci_ctx.landing = &landing;
        pci_cleanup(acc);
    }
    shim_pci_ctx.landing = NULL;
    shim_pci_ctx.warnings = NULL;
    shim_pci_ctx.warnings_size = 0;
}

static void shim_pci_copy(char *out, size_t size, const char *name)
{
    if (size > 0)
        snprintf(out, size, "%s", name != NULL ? name : "");
}

/* Vendor and device names; unknown ids give empty strings. Returns 0, or -1
 * when libpci reported an error (then shim_pci_ctx.message says what). */
static int shim_pci_lookup(struct pci_access *acc, uint16_t vendor_id, uint16_t device_id,
                           char *vendor_name, size_t vendor_size,
                           char *device_name, size_t device_size)
{
    jmp_buf landing;
    jmp_buf *outer = shim_pci_ctx.landing;
    char buf[256];
    const char *name;

    shim_pci_copy(vendor_name, vendor_size, NULL);
    shim_pci_copy(device_name, device_size, NULL);
    if (setjmp(landing) != 0) {
        shim_pci_ctx.landing = outer;
        shim_pci_copy(vendor_name, vendor_size, NULL);
        shim_pci_copy(device_name, device_size, NULL);
        return -1;
    }
    shim_pci_ctx.landing = &landing;
    /* pci_lookup_name may return its own storage rather than buf: copy. */
    name = pci_lookup_name(acc, buf, sizeof buf, PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS,
                           (int)vendor_id);
    shim_pci_copy(vendor_name, vendor_size, name);
    name = pci_lookup_name(acc, buf, sizeof buf, PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
                           (int)vendor_id, (int)device_id);
    shim_pci_copy(device_name, device_size, name);
    shim_pci_ctx.landing = outer;
    return 0;
}

#define SHIM_PCI_FILL_BASE (PCI_FILL_IDENT | PCI_FILL_CLASS)
#ifdef PCI_FILL_CLASS_EXT
#define SHIM_PCI_FILL_PROG_IF PCI_FILL_CLASS_EXT
#else
#define SHIM_PCI_FILL_PROG_IF 0
#endif
#ifdef PCI_FILL_NUMA_NODE
#define SHIM_PCI_FILL_NUMA PCI_FILL_NUMA_NODE
#else
#define SHIM_PCI_FILL_NUMA 0
#endif

static void shim_pci_describe(struct pci_dev *d, sriov_shim_pci_device *out)
{
    int known = pci_fill_info(d, SHIM_PCI_FILL_BASE | SHIM_PCI_FILL_PROG_IF | SHIM_PCI_FILL_NUMA);

    out->domain = (int32_t)d->domain;
    out->bus = d->bus;
    out->dev = d->dev;
    out->func = d->func;
    out->vendor_id = d->vendor_id;
    out->device_id = d->device_id;
    out->class_code = (uint32_t)d->device_class << 8;
    out->numa_node = -1;
#ifdef PCI_FILL_CLASS_EXT
    if (known & PCI_FILL_CLASS_EXT)
        out->class_code |= d->prog_if;
#endif
#ifdef PCI_FILL_NUMA_NODE
    if ((known & PCI_FILL_NUMA_NODE) && d->numa_node >= 0)
        out->numa_node = d->numa_node;
#endif
    (void)known;
}

int sriov_shim_pci_scan(const sriov_shim_pci_options *options, sriov_shim_pci_scan_result *out)
{
    struct pci_access *acc;
    jmp_buf landing;
    volatile int status = SRIOV_SHIM_PCI_INIT_FAILED;
    sriov_shim_pci_device *volatile devices = NULL;
    volatile size_t count = 0;
    struct pci_dev *volatile reading = NULL;

    memset(out, 0, sizeof *out);
    acc = shim_pci_open(out->warnings, sizeof out->warnings);
    if (acc == NULL) {
        snprintf(out->error, sizeof out->error, "pci_alloc failed");
        return SRIOV_SHIM_PCI_NO_MEMORY;
    }

    if (setjmp(landing) == 0) {
        size_t total = 0;
        int names = options == NULL || options->lookup_names;

        shim_pci_ctx.landing = &landing;
        if (options != NULL && options->sysfs_path != NULL) {
            pci_set_param(acc, "sysfs.path", (char *)options->sysfs_path);
            acc->method = PCI_ACCESS_SYS_BUS_PCI;
        }
        if (options != NULL && options->ids_path != NULL)
            pci_set_name_list_path(acc, (char *)options->ids_path, 0);

        pci_init(acc);
        status = SRIOV_SHIM_PCI_SCAN_FAILED;
        pci_scan_bus(acc);

        for (struct pci_dev *d = acc->devices; d != NULL; d = d->next)
            total++;
        devices = calloc(total > 0 ? total : 1, sizeof(sriov_shim_pci_device));
        if (devices == NULL) {
            status = SRIOV_SHIM_PCI_NO_MEMORY;
            snprintf(shim_pci_ctx.message, sizeof shim_pci_ctx.message,
                     "cannot allocate memory for %zu devices", total);
        } else {
            status = SRIOV_SHIM_PCI_READ_FAILED;
            for (struct pci_dev *d = acc->devices; d != NULL && count < total; d = d->next) {
                sriov_shim_pci_device *dev = &devices[count];

                reading = d;
                shim_pci_describe(d, dev);
                if (names && shim_pci_lookup(acc, dev->vendor_id, dev->device_id,
                                             dev->vendor_name, sizeof dev->vendor_name,
                                             dev->device_name, sizeof dev->device_name) != 0) {
                    /* Names are a nicety: report, and stop asking. */
                    names = 0;
                    snprintf(out->names_error, sizeof out->names_error, "%s", shim_pci_ctx.message);
                }
                count++;
            }
            reading = NULL;
            status = SRIOV_SHIM_PCI_OK;
        }
    }

    if (status != SRIOV_SHIM_PCI_OK)
        snprintf(out->error, sizeof out->error, "%s", shim_pci_ctx.message);
    if (status == SRIOV_SHIM_PCI_READ_FAILED && reading != NULL) {
        out->error_domain = (int32_t)reading->domain;
        out->error_bus = reading->bus;
        out->error_dev = reading->dev;
        out->error_func = reading->func;
    }
    shim_pci_close(acc);

    if (status != SRIOV_SHIM_PCI_OK) {
        free((void *)devices);
        return status;
    }
    out->devices = (sriov_shim_pci_device *)devices;
    out->count = count;
    return SRIOV_SHIM_PCI_OK;
}

void sriov_shim_pci_scan_free(sriov_shim_pci_scan_result *result)
{
    if (result == NULL)
        return;
    free(result->devices);
    result->devices = NULL;
    result->count = 0;
}

int sriov_shim_pci_lookup_names(const char *ids_path, uint16_t vendor_id, uint16_t device_id,
                                char *vendor_name, size_t vendor_name_size,
                                char *device_name, size_t device_name_size,
                                char *error, size_t error_size)
{
    struct pci_access *acc;
    int status = SRIOV_SHIM_PCI_OK;

    shim_pci_copy(vendor_name, vendor_name_size, NULL);
    shim_pci_copy(device_name, device_name_size, NULL);
    shim_pci_copy(error, error_size, NULL);
    acc = shim_pci_open(NULL, 0);
    if (acc == NULL) {
        shim_pci_copy(error, error_size, "pci_alloc failed");
        return SRIOV_SHIM_PCI_NO_MEMORY;
    }
    if (ids_path != NULL)
        pci_set_name_list_path(acc, (char *)ids_path, 0);
    if (shim_pci_lookup(acc, vendor_id, device_id, vendor_name, vendor_name_size,
                        device_name, device_name_size) != 0) {
        status = SRIOV_SHIM_PCI_NAMES_FAILED;
        shim_pci_copy(error, error_size, shim_pci_ctx.message);
    }
    shim_pci_close(acc);
    return status;
}
