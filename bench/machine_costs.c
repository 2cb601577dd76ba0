/*
 * machine_costs.c: what a syscall and a wake-up cost on this machine, for
 * `make bench` to print beside its figures (they differ from one machine to
 * the next by more than the figures do). Prints one line:
 *
 *   syscall_us=0.92 wakeup_rtt_us=6.6 wakeup_rtt_idle_us=7.2
 *
 * syscall_us: the median over 9 batches of 2,000 getppid() syscalls, per call.
 * wakeup_rtt_us: the median round trip of one byte through a pipe to a thread
 * blocked in read() and back (two wake-ups and four syscalls), 2,000 rounds
 * back to back; wakeup_rtt_idle_us: the same, each round after 50 µs asleep,
 * as a server is between a reply and the next request (500 rounds).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int to_echo[2], from_echo[2];

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static double median_us(long long *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return (double)v[n / 2] / 1000.0;
}

static void *echo(void *arg)
{
    (void)arg;
    char c;
    while (read(to_echo[0], &c, 1) == 1 && write(from_echo[1], &c, 1) == 1)
        ;
    return NULL;
}

static double round_trips(int rounds, long long idle_ns)
{
    static long long v[2000];
    struct timespec idle = {0, idle_ns};
    char c = 'x';
    for (int i = 0; i < rounds; i++) {
        if (idle_ns)
            nanosleep(&idle, NULL);
        long long t0 = now_ns();
        if (write(to_echo[1], &c, 1) != 1 || read(from_echo[0], &c, 1) != 1) {
            perror("machine_costs: pipe");
            exit(1);
        }
        v[i] = now_ns() - t0;
    }
    return median_us(v, rounds);
}

int main(void)
{
    long long batches[9];
    for (int b = 0; b < 9; b++) {
        long long t0 = now_ns();
        for (int i = 0; i < 2000; i++)
            syscall(SYS_getppid);
        batches[b] = (now_ns() - t0) / 2000;
    }
    double syscall_us = median_us(batches, 9);
    pthread_t t;
    if (pipe(to_echo) || pipe(from_echo) || pthread_create(&t, NULL, echo, NULL)) {
        perror("machine_costs");
        return 1;
    }
    double hot = round_trips(2000, 0);
    double idle = round_trips(500, 50000);
    printf("syscall_us=%.2f wakeup_rtt_us=%.1f wakeup_rtt_idle_us=%.1f\n", syscall_us, hot, idle);
    return 0;
}
