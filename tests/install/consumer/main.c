/* main.c - an outside program that round-trips one frame through an installed libring. */
#include <framering/frame.h>
#include <framering/ring.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char name[64];
	snprintf(name, sizeof(name), "install-test-%d", (int)getpid());
	fr_ring_t *prod = NULL, *cons = NULL;
	struct fr_frame_header *out, in;
	const uint8_t *rec;
	int rc = fr_ring_create(&prod, name, NULL);
	if (rc == 0)
		rc = fr_ring_open(&cons, name);
	if (rc == 0)
		rc = fr_frame_reserve(prod, FR_FRAME_FMT_GRAY8, 64, 48, &out, FR_RING_NO_WAIT);
	if (rc == 0) {
		((uint8_t *)out)[out->plane[0].offset] = 42;
		rc = fr_frame_commit(prod, out);
	}
	if (rc == 0)
		rc = fr_frame_peek(cons, &in, &rec, 0, NULL, FR_RING_NO_WAIT);
	if (rc == 0 && (in.width != 64 || in.height != 48 || rec[in.plane[0].offset] != 42))
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "install test: %s\n", rc == -1 ? "frame mismatch" : fr_ring_strerror(rc));
	fr_ring_close(&cons);
	fr_ring_close(&prod);
	if (rc == 0)
		printf("ok: 64x48 gray8 frame through an installed libring\n");
	return rc == 0 ? 0 : 1;
}
