/* peer_gst.c - the GStreamer peer of bench_peers: appsrc ! shmsink -> shmsrc ! appsink, with buffers from shmsink's own area or one copy in. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include "bench_peers.h"

/* shmsink's area: its default size (64 MiB), room for 10 frames. */
#define SHM_AREA_BYTES (64u << 20)
/* Buffers the producer cycles through: from shmsink's area (zero copy) or from
 * system memory (appsrc copy case). A buffer comes back once shmsink is done
 * with it: after the consumer's release (zero copy) or after its copy. */
#define POOL_ZEROCOPY 8
#define POOL_COPY 4

struct gst_state {
	GstElement *pipeline, *app; /* appsrc or appsink */
	GstBufferPool *pool;
	GstAllocator *shm_alloc; /* zero copy: shmsink's allocator */
	GstBuffer *buf;
	GstSample *sample;
	GstMapInfo map;
	bool mapped;
};

/* The first error on the pipeline's bus, if any, into the side's message. */
static bool bus_error(struct endpoint *ep, struct gst_state *st, const char *what)
{
	GstBus *bus = gst_element_get_bus(st->pipeline);
	GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
	gst_object_unref(bus);
	if (!m)
		return false;
	GError *err = NULL;
	gchar *dbg = NULL;
	gst_message_parse_error(m, &err, &dbg);
	side_fail(ep->side, "%s: %s: %s (%s)", what, GST_OBJECT_NAME(GST_MESSAGE_SRC(m)), err ? err->message : "?",
		  dbg ? dbg : "");
	g_clear_error(&err);
	g_free(dbg);
	gst_message_unref(m);
	return true;
}

static GstElement *make(struct endpoint *ep, const char *factory, const char *name)
{
	GstElement *e = gst_element_factory_make(factory, name);
	if (!e)
		side_fail(ep->side, "no GStreamer element '%s'", factory);
	return e;
}

static GstCaps *frame_caps(void)
{
	return gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "BGR", "width", G_TYPE_INT, (int)FRAME_W,
				   "height", G_TYPE_INT, (int)FRAME_H, "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
}

/* Ask shmsink (through appsrc's pad) for its allocator: the ALLOCATION query. */
static GstAllocator *shmsink_allocator(GstElement *appsrc, GstCaps *caps)
{
	GstAllocator *found = NULL;
	GstPad *pad = gst_element_get_static_pad(appsrc, "src");
	GstQuery *q = gst_query_new_allocation(caps, TRUE);
	if (gst_pad_peer_query(pad, q)) {
		for (guint i = 0; i < gst_query_get_n_allocation_params(q) && !found; i++) {
			GstAllocator *a = NULL;
			GstAllocationParams params;
			gst_query_parse_nth_allocation_param(q, i, &a, &params);
			if (a && strcmp(G_OBJECT_TYPE_NAME(a), "GstShmSinkAllocator") == 0)
				found = a;
			else if (a)
				gst_object_unref(a);
		}
	}
	gst_query_unref(q);
	gst_object_unref(pad);
	return found;
}

static int gst_prod_open(struct endpoint *ep)
{
	struct gst_state *st = g_new0(struct gst_state, 1);
	ep->priv = st;
	gst_init(NULL, NULL);
	GstElement *src = make(ep, "appsrc", "src"), *sink = make(ep, "shmsink", "sink");
	if (!src || !sink)
		return -1;
	GstCaps *caps = frame_caps();
	g_object_set(src, "caps", caps, "format", GST_FORMAT_TIME, "block", TRUE, "max-bytes", (guint64)FRAME_BYTES,
		     NULL);
	g_object_set(sink, "socket-path", ep->ctl->name, "shm-size", (guint)SHM_AREA_BYTES, "wait-for-connection",
		     TRUE, "sync", FALSE, "async", FALSE, NULL);
	st->pipeline = gst_pipeline_new("producer");
	st->app = src;
	gst_bin_add_many(GST_BIN(st->pipeline), src, sink, NULL);
	if (!gst_element_link(src, sink)) {
		side_fail(ep->side, "cannot link appsrc to shmsink");
		gst_caps_unref(caps);
		return -1;
	}
	/* shmsink makes its socket and area when it starts (READY -> PAUSED). */
	if (gst_element_set_state(st->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
		if (!bus_error(ep, st, "producer pipeline"))
			side_fail(ep->side, "the producer pipeline did not start");
		gst_caps_unref(caps);
		return -1;
	}
	st->pool = gst_buffer_pool_new();
	GstStructure *cfg = gst_buffer_pool_get_config(st->pool);
	unsigned nbuf = ep->cd->variant == GST_ZEROCOPY ? POOL_ZEROCOPY : POOL_COPY;
	gst_buffer_pool_config_set_params(cfg, caps, (guint)FRAME_BYTES, nbuf, nbuf);
	if (ep->cd->variant == GST_ZEROCOPY) {
		if (!(st->shm_alloc = shmsink_allocator(src, caps))) {
			side_fail(ep->side, "shmsink proposed no allocator of its own (ALLOCATION query)");
			gst_structure_free(cfg);
			gst_caps_unref(caps);
			return -1;
		}
		GstAllocationParams params;
		gst_allocation_params_init(&params);
		params.align = 63;
		gst_buffer_pool_config_set_allocator(cfg, st->shm_alloc, &params);
	}
	gst_caps_unref(caps);
	if (!gst_buffer_pool_set_config(st->pool, cfg) || !gst_buffer_pool_set_active(st->pool, TRUE)) {
		side_fail(ep->side, "cannot configure or activate the buffer pool");
		return -1;
	}
	return 0;
}

static int gst_prod_get(struct endpoint *ep, void **buf)
{
	struct gst_state *st = ep->priv;
	/* Waits until a buffer is back (backpressure). */
	if (gst_buffer_pool_acquire_buffer(st->pool, &st->buf, NULL) != GST_FLOW_OK) {
		side_fail(ep->side, "gst_buffer_pool_acquire_buffer failed");
		return -1;
	}
	/* shmsink's allocator falls back to system memory when its area is full;
	 * the frame would then be copied: that is not this case any more. */
	if (st->shm_alloc && gst_buffer_peek_memory(st->buf, 0)->allocator != st->shm_alloc) {
		side_fail(ep->side, "a pool buffer is not in shmsink's area (the area is too small for the pool)");
		return -1;
	}
	if (!gst_buffer_map(st->buf, &st->map, GST_MAP_WRITE)) {
		side_fail(ep->side, "gst_buffer_map(WRITE) failed");
		return -1;
	}
	st->mapped = true;
	*buf = st->map.data;
	return 0;
}

static int gst_prod_put(struct endpoint *ep, void *buf)
{
	(void)buf;
	struct gst_state *st = ep->priv;
	gst_buffer_unmap(st->buf, &st->map);
	st->mapped = false;
	GstFlowReturn fr = gst_app_src_push_buffer(GST_APP_SRC(st->app), st->buf); /* takes the buffer */
	st->buf = NULL;
	if (fr != GST_FLOW_OK) {
		if (!bus_error(ep, st, "producer"))
			side_fail(ep->side, "gst_app_src_push_buffer: %s", gst_flow_get_name(fr));
		return -1;
	}
	return 0;
}

static void gst_close(struct endpoint *ep)
{
	struct gst_state *st = ep->priv;
	if (!st)
		return;
	if (st->mapped)
		gst_buffer_unmap(st->sample ? gst_sample_get_buffer(st->sample) : st->buf, &st->map);
	if (st->buf)
		gst_buffer_unref(st->buf);
	if (st->sample)
		gst_sample_unref(st->sample);
	if (st->pipeline) {
		gst_element_set_state(st->pipeline, GST_STATE_NULL);
		gst_object_unref(st->pipeline);
	}
	if (st->pool) {
		gst_buffer_pool_set_active(st->pool, FALSE);
		gst_object_unref(st->pool);
	}
	if (st->shm_alloc)
		gst_object_unref(st->shm_alloc);
	g_free(st);
	ep->priv = NULL;
}

static int gst_cons_open(struct endpoint *ep)
{
	struct gst_state *st = g_new0(struct gst_state, 1);
	ep->priv = st;
	gst_init(NULL, NULL);
	GstElement *src = make(ep, "shmsrc", "src"), *sink = make(ep, "appsink", "sink");
	if (!src || !sink)
		return -1;
	g_object_set(src, "socket-path", ep->ctl->name, "is-live", FALSE, NULL);
	/* A queue of 4 like iceoryx's; no extra reference to the last buffer (it would
	 * keep one frame of shmsink's area). */
	g_object_set(sink, "sync", FALSE, "max-buffers", 4u, "drop", FALSE, "enable-last-sample", FALSE, NULL);
	st->pipeline = gst_pipeline_new("consumer");
	st->app = sink;
	gst_bin_add_many(GST_BIN(st->pipeline), src, sink, NULL);
	if (!gst_element_link(src, sink)) {
		side_fail(ep->side, "cannot link shmsrc to appsink");
		return -1;
	}
	/* shmsrc connects to the socket when it starts. */
	if (gst_element_set_state(st->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
		if (!bus_error(ep, st, "consumer pipeline"))
			side_fail(ep->side, "the consumer pipeline did not start");
		return -1;
	}
	return 0;
}

static int gst_cons_get(struct endpoint *ep, const void **buf, size_t *len)
{
	struct gst_state *st = ep->priv;
	uint64_t deadline = now_ns() + SIDE_TIMEOUT_NS;
	while (!(st->sample = gst_app_sink_try_pull_sample(GST_APP_SINK(st->app), 200 * GST_MSECOND))) {
		if (bus_error(ep, st, "consumer"))
			return -1;
		if (gst_app_sink_is_eos(GST_APP_SINK(st->app))) {
			side_fail(ep->side, "end of stream before the last frame");
			return -1;
		}
		if (now_ns() > deadline) {
			side_fail(ep->side, "no buffer for %d s", (int)(SIDE_TIMEOUT_NS / 1000000000u));
			return -1;
		}
	}
	if (!gst_buffer_map(gst_sample_get_buffer(st->sample), &st->map, GST_MAP_READ)) {
		side_fail(ep->side, "gst_buffer_map(READ) failed");
		return -1;
	}
	st->mapped = true;
	*buf = st->map.data;
	*len = st->map.size;
	return 0;
}

static int gst_cons_put(struct endpoint *ep)
{
	struct gst_state *st = ep->priv;
	gst_buffer_unmap(gst_sample_get_buffer(st->sample), &st->map);
	st->mapped = false;
	gst_sample_unref(st->sample); /* the last reference: shmsrc tells shmsink the block is free */
	st->sample = NULL;
	return 0;
}

static int gst_setup(struct ctl *c, const struct case_def *cd, char *why, size_t n)
{
	(void)cd;
	/* The driver put a path in its private directory into c->name; shmsink refuses an existing one. */
	if (unlink(c->name) < 0 && errno != ENOENT) {
		snprintf(why, n, "cannot remove %s: %s", c->name, strerror(errno));
		return -1;
	}
	return 0;
}

static void gst_cleanup(struct ctl *c, const struct case_def *cd, pid_t prod, pid_t cons)
{
	(void)cd;
	(void)cons;
	unlink(c->name);
	/* A killed shmsink leaves its area, /dev/shm/shmpipe.%5d.%5d (pid, counter). */
	if (prod > 0) {
		for (int i = 0; i < 8; i++) {
			char path[64];
			snprintf(path, sizeof(path), "/dev/shm/shmpipe.%5d.%5d", (int)prod, i);
			unlink(path);
		}
	}
}

const struct peer_ops gst_ops = {
	.setup = gst_setup,
	.prod_open = gst_prod_open,
	.prod_get = gst_prod_get,
	.prod_put = gst_prod_put,
	.prod_close = gst_close,
	.cons_open = gst_cons_open,
	.cons_get = gst_cons_get,
	.cons_put = gst_cons_put,
	.cons_close = gst_close,
	.cleanup = gst_cleanup,
};

int gst_preflight(char *version, size_t vn, char *why, size_t n)
{
	static const char *const need[][2] = {{"appsrc", "gstreamer1.0-plugins-base"},
					      {"appsink", "gstreamer1.0-plugins-base"},
					      {"shmsink", "gstreamer1.0-plugins-bad"},
					      {"shmsrc", "gstreamer1.0-plugins-bad"}};
	GError *err = NULL;
	if (!gst_init_check(NULL, NULL, &err)) {
		snprintf(why, n, "gst_init: %s", err ? err->message : "failed");
		g_clear_error(&err);
		return -1;
	}
	gchar *v = gst_version_string();
	snprintf(version, vn, "%s", v);
	g_free(v);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		GstElementFactory *f = gst_element_factory_find(need[i][0]);
		if (!f) {
			snprintf(why, n, "no GStreamer element %s (Debian package %s)", need[i][0], need[i][1]);
			return -1;
		}
		gst_object_unref(f);
	}
	return 0;
}
