/* fflog.c - FFmpeg's own log messages, held back while a program finds out whether its input or output works. */
#include "fflog.h"
#include "apputil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_bool muted;
static enum fflog_keep keep_which;
static const AVClass *counted_class;
static atomic_uint_fast64_t counted_errors;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static char kept_error[200];

/* FFmpeg calls this from whichever thread logs (decoder and encoder threads too). */
static void log_callback(void *avcl, int level, const char *fmt, va_list vl)
{
	if (level <= AV_LOG_ERROR && counted_class && avcl && *(const AVClass **)avcl == counted_class)
		atomic_fetch_add(&counted_errors, 1);
	if (!atomic_load(&muted)) {
		if (level <= av_log_get_level())
			app_progress_end(); /* a message of its own, not the end of the progress line */
		av_log_default_callback(avcl, level, fmt, vl); /* it filters by the level itself */
		return;
	}
	if (level > AV_LOG_ERROR)
		return;
	pthread_mutex_lock(&kept_lock);
	if (keep_which == FFLOG_KEEP_LAST || !kept_error[0]) {
		vsnprintf(kept_error, sizeof(kept_error), fmt, vl);
		kept_error[strcspn(kept_error, "\r\n")] = 0;
	}
	pthread_mutex_unlock(&kept_lock);
}

void fflog_install(int level, enum fflog_keep keep, const AVClass *counted)
{
	keep_which = keep;
	counted_class = counted;
	av_log_set_level(level);
	av_log_set_callback(log_callback);
}

void fflog_mute(bool mute)
{
	pthread_mutex_lock(&kept_lock);
	kept_error[0] = 0;
	pthread_mutex_unlock(&kept_lock);
	atomic_store(&muted, mute);
}

const char *fflog_detail(void)
{
	static char buf[sizeof(kept_error) + 16];
	pthread_mutex_lock(&kept_lock);
	if (kept_error[0])
		snprintf(buf, sizeof(buf), " (FFmpeg: %s)", kept_error);
	else
		buf[0] = 0;
	pthread_mutex_unlock(&kept_lock);
	return buf;
}

uint64_t fflog_counted(void)
{
	return atomic_load(&counted_errors);
}

void fflog_reset_counted(void)
{
	atomic_store(&counted_errors, 0);
}
