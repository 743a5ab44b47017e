/* image: the host program the library starts, and its verification. The
 * image is embedded in libp11isolate.so; before a host is
 * started from it, the bytes that will be executed are hashed and compared
 * with the build's hash, in the first process and in forked children alike.
 * Included by proxy/plane.c. */
#include "shim.h"
#include "calls_gen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The Makefile builds the library with the host image's path, its SHA-256
 * and the build ID (CGO_CFLAGS): the image is assembled into the library's
 * read-only data here, in C, so that it is there from the moment the
 * library is loaded, before Go has run anything (a child forked right after
 * dlopen has no Go). A build without them (go vet, go test) has no image,
 * and says so when asked for a host. */
#ifdef P11I_HOST_IMAGE
__asm__(".pushsection .rodata\n"
	".balign 64\n"
	".globl p11i_host_image\n"
	".hidden p11i_host_image\n"
	"p11i_host_image:\n"
	".incbin \"" P11I_HOST_IMAGE "\"\n"
	".globl p11i_host_image_end\n"
	".hidden p11i_host_image_end\n"
	"p11i_host_image_end:\n"
	".popsection\n");
extern const unsigned char p11i_host_image[], p11i_host_image_end[];
#define IMAGE p11i_host_image
#define IMAGE_LEN ((size_t)(p11i_host_image_end - p11i_host_image))
#else
#define IMAGE NULL
#define IMAGE_LEN ((size_t)0)
#define P11I_HOST_SHA256 ""
#endif
#ifndef P11I_BUILD_ID
#define P11I_BUILD_ID "dev"
#endif

static const struct {
	const char *sha256, *build_id;
	int protocol;
} img = { P11I_HOST_SHA256, P11I_BUILD_ID, P11I_PROTOCOL };

/* verify compares the hash of what fd holds with the build's. */
static int verify(int fd, const char *what, char *err, size_t errlen)
{
	char got[65];

	if (p11i_sha256_fd(fd, got) != 0) {
		snprintf(err, errlen, "%sreading the host image: %s", what, strerror(errno));
		return -1;
	}
	if (strcmp(got, img.sha256) != 0) {
		snprintf(err, errlen,
			 "%sthe host image's SHA-256 is %s, the build recorded %s: refusing to run it (rebuild and reinstall p11isolate)",
			 what, got, img.sha256);
		return -1;
	}
	return 0;
}

int p11i_host_exe(const char *override, char *err, size_t errlen)
{
	char path[4096], what[4200];
	int fd;

	if (img.sha256[0] == '\0') {
		snprintf(err, errlen, "this build recorded no host hash: build libp11isolate.so with make");
		return -1;
	}
	if (override == NULL || override[0] == '\0') {
		fd = p11i_memfd_image(IMAGE, IMAGE_LEN);
		if (fd >= 0) {
			if (verify(fd, "", err, errlen) != 0) {
				close(fd);
				return -1;
			}
			return fd;
		}
		if (p11i_self_dir(path, sizeof path - 32) != 0) {
			snprintf(err, errlen,
				 "executable memfds are refused here and the library's own directory is unknown: set host=/path/to/p11isolate-host");
			return -1;
		}
		strcat(path, "/p11isolate-host");
		override = path;
	}
	fd = open(override, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen,
			 "executable memfds are refused here and the host binary %s cannot be opened: %s (run make install)",
			 override, strerror(errno));
		return -1;
	}
	snprintf(what, sizeof what, "%s: ", override);
	if (verify(fd, what, err, errlen) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}
