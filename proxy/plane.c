#define _GNU_SOURCE
/* See shim.c: the C data plane (cshim/mp.c, cshim/plane.c, cshim/handles.c)
 * and the forked child's path (cshim/child.c) compiled as part of this
 * package. */
#include "../cshim/mp.c"
#include "../cshim/plane.c"
#include "../cshim/handles.c"
#include "../cshim/child.c"
