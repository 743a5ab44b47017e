/* See shim.c: cshim/spawn.c compiled as part of this package. */
#include "../cshim/spawn.c"
