#include "sriov_shim.h"

#include <errno.h>
#include <sys/xattr.h>

int sriov_shim_set_xattr(const char *path, const char *name, const void *value, size_t size)
{
    return setxattr(path, name, value, size, 0) == 0 ? 0 : -errno;
}
