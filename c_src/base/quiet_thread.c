/* quiet_thread.c: a thread that takes no signal; see quiet_thread.h. */
#include "quiet_thread.h"

#include <signal.h>

int quiet_thread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*run)(void *), void *arg)
{
    sigset_t all, was;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &was); /* the new thread inherits this mask */
    int rc = pthread_create(thread, attr, run, arg);
    pthread_sigmask(SIG_SETMASK, &was, NULL);
    return rc;
}
