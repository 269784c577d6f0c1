/* fflog.h - FFmpeg's own log messages, held back while a program finds out whether its input or output works. */
#ifndef FRAMERING_FFLOG_H
#define FRAMERING_FFLOG_H

#include <stdbool.h>
#include <stdint.h>

#include <libavutil/log.h>

/* Which of the errors FFmpeg logged while muted fflog_detail() quotes. */
enum fflog_keep {
	FFLOG_KEEP_FIRST, /* the cause, usually (framering-send: an output that will not open) */
	FFLOG_KEEP_LAST,  /* what gave up last (framering-capture: probing and decoding a bad input) */
};

/* fflog_install - route FFmpeg's log through here, shown at LEVEL (AV_LOG_*)
 * while not muted. Errors logged by objects of class COUNTED (NULL: none) are
 * counted whether muted or not: see fflog_counted(). Call once, before any
 * other thread uses FFmpeg. */
void fflog_install(int level, enum fflog_keep keep, const AVClass *counted);

/* fflog_mute - hold FFmpeg's messages back (true) or let them through again
 * (false). Either way the error kept so far is forgotten. */
void fflog_mute(bool muted);

/* fflog_detail - " (FFmpeg: <the error kept while muted>)", or "" if there is
 * none: for the end of a program's one-line complaint. The string stays valid
 * until the next call. */
const char *fflog_detail(void);

/* fflog_counted - errors logged by the COUNTED class since install or the last
 * fflog_reset_counted() (from any thread: FFmpeg's frame threads log too). */
uint64_t fflog_counted(void);
void fflog_reset_counted(void);

#endif /* FRAMERING_FFLOG_H */
