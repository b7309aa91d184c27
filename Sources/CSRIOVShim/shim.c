#include "sriov_shim.h"
