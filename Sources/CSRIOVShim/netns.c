#define _GNU_SOURCE
#include "sriov_shim.h"

#include <errno.h>
#include <sched.h>

int sriov_shim_enter_net_namespace(int fd)
{
    return setns(fd, CLONE_NEWNET) == 0 ? 0 : -errno;
}
