#ifndef SRIOV_SHIM_H
#define SRIOV_SHIM_H
#endif
