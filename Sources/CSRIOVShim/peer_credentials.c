#define _GNU_SOURCE /* struct ucred */
#include "sriov_shim.h"

#include <errno.h>
#include <sys/socket.h>

int sriov_shim_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -errno;
    if (len != sizeof cred)
        return -EINVAL;
    if (pid != NULL)
        *pid = cred.pid;
    if (uid != NULL)
        *uid = cred.uid;
    if (gid != NULL)
        *gid = cred.gid;
    return 0;
}
