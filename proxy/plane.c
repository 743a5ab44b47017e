/* See shim.c: the C data plane (cshim/plane.c, cshim/mp.c) compiled as part
 * of this package. */
#include "../cshim/mp.c"
#include "../cshim/plane.c"
