/* cgo compiles only the C files of the package directory: the shim lives in
 * cshim/ and is compiled here, with the package's -Wall -Wextra -Werror. */
#include "../cshim/shim.c"
