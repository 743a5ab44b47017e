#define _GNU_SOURCE
/* See shim.c: the C data plane (cshim/mp.c, cshim/plane.c, cshim/handles.c)
 * and the supervision (cshim/sha256.c, image.c, log.c, trace.c, kit.c, supervise.c) compiled as part of this
 * package. */
#include "../cshim/mp.c"
#include "../cshim/spin.c"
#include "../cshim/plane.c"
#include "../cshim/handles.c"
#include "../cshim/sessions.c"
#include "../cshim/sha256.c"
#include "../cshim/image.c"
#include "../cshim/log.c"
#include "../cshim/trace.c"
#include "../cshim/kit.c"
#include "../cshim/supervise.c"
