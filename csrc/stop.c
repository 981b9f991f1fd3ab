/* The stop flag of kernel calls (fastconv.h, fc_set_poll; common.h,
 * fc_stopping): one per calling thread, so an interrupt of one thread's call
 * leaves the calls of other threads alone. */
#include "common.h"

#if defined(_MSC_VER)
#define FC_THREAD_LOCAL __declspec(thread)
#else
#define FC_THREAD_LOCAL __thread
#endif

static FC_THREAD_LOCAL fc_stop fc_this_thread_stop;

/* Set once at start-up by the bridge (before any kernel runs), read by
 * every poll. */
static fc_poll_fn fc_poll;

void fc_set_poll(fc_poll_fn poll)
{
    fc_poll = poll;
}

fc_stop *fc_stop_flag(void)
{
    return &fc_this_thread_stop;
}

static void fc_stop_set(fc_stop *stop, int value)
{
#if defined(__GNUC__)
    __atomic_store_n(stop, value, __ATOMIC_RELAXED);
#else
    *(volatile fc_stop *)stop = value;
#endif
}

void fc_stop_poll(fc_stop *stop)
{
    if (!fc_stop_is_set(stop) && fc_poll && fc_poll()) fc_stop_set(stop, 1);
}

int fc_stop_take(void)
{
    const int stopped = fc_stop_is_set(&fc_this_thread_stop);
    fc_stop_set(&fc_this_thread_stop, 0);
    return stopped;
}

void fc_stop_request(void)
{
    fc_stop_set(&fc_this_thread_stop, 1);
}
