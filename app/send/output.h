/* output.h - framering-send's output side: convert a ring frame (swscale), encode it (libavcodec)
 * and mux it (libavformat) to a file or a URL.
 *
 * The ring side (send.c) hands each frame to send_out_convert() while it still
 * holds the record. A frame already in the encoder's format and size is handed
 * to the encoder where it lies (zero-copy: an AVFrame over the record), when the
 * encoder is one that lets go of its input within the call (libx264 copies it);
 * the record is released after send_out_encode(). Any other frame is converted
 * (swscale, reading the record) or copied into an AVFrame of the encoder's own,
 * and the record is released before the encoder's work. The output opens on the first
 * frame, whose size and format the encoder takes; a later frame of another size or
 * format is scaled to the first one or, with restart, gets a fresh encoder in the
 * same stream (formats that carry codec headers in band: MPEG-TS).
 */
#ifndef FRAMERING_SEND_OUTPUT_H
#define FRAMERING_SEND_OUTPUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "frame.h"

/* Exit statuses of framering-send beyond the consumer table (consumer_exit.h). */
enum send_exit {
	SEND_EXIT_ENCODER = 8, /* unknown encoder, or it refused the stream or its settings */
	SEND_EXIT_OUTPUT = 9,  /* output cannot be opened: unknown format, unreachable URL, unwritable file */
	SEND_EXIT_PEER = 10,   /* output failed while running: the network peer went away, write error */
};

/* --zero-copy: whether frames in the encoder's format go to it in place. */
enum send_zero_copy {
	SEND_ZC_AUTO, /* after the first SEND_ZC_PROBES frames (copies) all came back at once */
	SEND_ZC_ON,   /* from the first frame (still checked on every frame) */
	SEND_ZC_OFF,  /* always a copy */
};
#define SEND_ZC_PROBES 8

/* The path a frame took into the encoder. */
enum send_input_path {
	SEND_PATH_NONE,
	SEND_PATH_ZERO_COPY, /* an AVFrame over the ring record */
	SEND_PATH_COPY,      /* copied into the encoder's frame */
	SEND_PATH_CONVERT,   /* swscale from the record into the encoder's frame */
};

/* What the user asked for (send.c fills it from the options). */
struct send_out_cfg {
	const char *url;
	const AVOutputFormat *ofmt;
	const AVCodec *codec;
	enum AVPixelFormat pix_fmt; /* AV_PIX_FMT_NONE: chosen for the encoder */
	unsigned width, height;     /* 0: the first frame's */
	int64_t bit_rate;           /* 0: the encoder's default */
	int gop;                    /* -1: default (low latency: one second) */
	bool low_latency;
	bool restart_on_change;     /* a new size/format restarts the encoder; else scaled */
	bool capture_clock;         /* timestamps from capture_ns (1/90000) instead of pts */
	AVRational frame_rate;      /* nominal rate if known (ring meta), else 0/0 */
	AVDictionary *opts;         /* -o KEY=VALUE, --crf, --preset ...: encoder, muxer, protocol */
	int (*interrupt)(void *);   /* FFmpeg's blocking I/O asks this whether to give up */
	bool quiet_open;            /* say nothing when the output cannot be opened (--reconnect retries) */
	enum send_zero_copy zero_copy;
};

struct send_out {
	const struct send_out_cfg *cfg;
	AVFormatContext *mux;
	AVStream *st;
	AVCodecContext *enc;
	AVPacket *pkt;
	struct SwsContext *sws;
	uint32_t sws_fourcc;        /* the source the sws context was made for */
	unsigned sws_w, sws_h;
	uint8_t sws_matrix, sws_range;
	uint32_t fourcc;            /* the ring format and size the encoder was opened for */
	unsigned src_w, src_h;
	unsigned out_w, out_h;
	enum AVPixelFormat out_fmt;
	AVRational tb;              /* encoder time base */
	int64_t last_pts, pts_offset, frame_dur;
	bool have_pts;
	uint64_t first_capture_ns;
	bool header_written, trailer_written;
	bool created_file;          /* a file we opened: removed if nothing got into it */
	/* counters */
	uint64_t frames_in, packets, bytes, restarts, scaled_changes;
	uint64_t keyframes;
	double latency_sum_ms;
	double *lat_ms; size_t lat_n, lat_cap; /* capture -> written, per packet with a known frame */
	uint64_t cpu_convert_ns, cpu_encode_ns, cpu_mux_ns;
	int last_error;             /* AVERROR of the write that failed */
	/* zero-copy: SEND_ZC_ON once the encoder is known to let go of its input
	 * within avcodec_send_frame + draining, SEND_ZC_OFF when it may not */
	enum send_zero_copy zc;
	unsigned zc_probes_ok;      /* probe frames the encoder let go of at once */
	AVBufferRef *probe[4];      /* our references to the probe frame's buffers */
	atomic_int ring_refs;       /* AVBufferRefs over ring memory not yet freed: the record
				       may be released only at 0 */
	struct fr_frame_header held; /* the header of the record the frame in hand wraps */
	enum send_input_path path;  /* of the frame in hand (the last one) */
	uint64_t frames_zero_copy, frames_copied, frames_converted, zc_fallbacks;
};

/* Open the encoder for the first frame H (its size and format unless the
 * config says otherwise) and the output, and write the header. 0, or an exit
 * status after the one line that says why (nothing is left behind then). */
int send_out_open(struct send_out *o, const struct send_out_cfg *cfg, const struct fr_frame_header *h);

/* Turn one frame (REC: the record in the ring, still held) into *OUT, a frame
 * of the encoder's format, size and time base: the record itself (zero-copy,
 * o->path SEND_PATH_ZERO_COPY: keep the record until send_out_encode() has
 * returned), or a conversion or copy of it (the record may be released at
 * once). 0, or an exit status after its line. */
int send_out_convert(struct send_out *o, const struct fr_frame_header *h, const uint8_t *rec, AVFrame **out);

/* Encode *FRAME (taken: *FRAME is NULL after) and write what the encoder
 * gives. On return, whatever the status, the encoder holds no reference to the
 * ring: an encoder that kept a zero-copy frame is drained, closed and opened
 * again (and gets copies from then on). 0, or an exit status after its line. */
int send_out_encode(struct send_out *o, AVFrame **frame);

/* The name of an input path for the stats ("zero-copy", "copy", "convert", ""). */
const char *send_input_path_name(enum send_input_path p);

/* Drain the encoder and finalize the output (trailer, index). 0 or an exit status. */
int send_out_finish(struct send_out *o);

/* Free everything; a file with nothing written is removed. */
void send_out_close(struct send_out *o);

/* Packets the encoder holds: frames in, packets out. */
uint64_t send_out_queue(const struct send_out *o);

/* Whether the URL names a network output (a scheme other than file:). */
bool send_is_network(const char *url);


#endif
