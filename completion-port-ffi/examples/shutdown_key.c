/* The seed "PostQueuedCompletionStatus" (the shutdown-key worker pool), ported to libiocp.
 *
 * A pool of worker threads waits on one port; the main thread posts work packets, then one
 * packet with COMPLETION_KEY_SHUTDOWN per worker: each worker takes exactly one and exits
 * (the seed's advice: post once per thread, or some stay blocked). The port is closed only
 * once every worker has exited.
 *
 * Usage: shutdown_key [workers, default 4] [work packets, default 1000]
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

#define COMPLETION_KEY_SHUTDOWN ((ULONG_PTR)0)
#define COMPLETION_KEY_WORK ((ULONG_PTR)1)

static HANDLE hPort;
static volatile LONG processed;
static volatile LONG sum;

static DWORD WINAPI Worker(LPVOID param) {
    DWORD id = (DWORD)(ULONG_PTR)param;
    DWORD handled = 0;
    for (;;) {
        DWORD bytes;
        ULONG_PTR key;
        LPOVERLAPPED ov;
        if (!GetQueuedCompletionStatus(hPort, &bytes, &key, &ov, INFINITE)) {
            /* Only a closed port can make an INFINITE wait fail without an OVERLAPPED. */
            if (ov == NULL) break;
            continue;
        }
        if (key == COMPLETION_KEY_SHUTDOWN) break;
        InterlockedExchangeAdd(&sum, (LONG)bytes);
        InterlockedIncrement(&processed);
        handled++;
    }
    (void)id;
    return handled;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    int packets = argc > 2 ? atoi(argv[2]) : 1000;
    if (workers < 1 || workers > 64 || packets < 0) {
        fprintf(stderr, "usage: shutdown_key [workers 1..64] [packets]\n");
        return 2;
    }
    hPort = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    if (hPort == NULL) {
        fprintf(stderr, "CreateIoCompletionPort failed: %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    HANDLE threads[64];
    for (int i = 0; i < workers; i++) threads[i] = CreateThread(NULL, 0, Worker, (LPVOID)(ULONG_PTR)i, 0, NULL);

    for (int i = 1; i <= packets; i++) PostQueuedCompletionStatus(hPort, (DWORD)i, COMPLETION_KEY_WORK, NULL);
    /* One shutdown packet per worker thread. */
    for (int i = 0; i < workers; i++) PostQueuedCompletionStatus(hPort, 0, COMPLETION_KEY_SHUTDOWN, NULL);

    WaitForMultipleObjects((DWORD)workers, threads, TRUE, INFINITE);
    DWORD total = 0;
    for (int i = 0; i < workers; i++) {
        DWORD handled = 0;
        GetExitCodeThread(threads[i], &handled);
        total += handled;
        CloseHandle(threads[i]);
    }
    CloseHandle(hPort);
    printf("%d workers processed %ld packets (sum %ld), exit codes add up to %lu\n", workers, (long)processed,
           (long)sum, (unsigned long)total);
    return (processed == packets && (long)total == packets) ? 0 : 1;
}
