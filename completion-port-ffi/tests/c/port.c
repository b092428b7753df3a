/* The port's return-value and GetLastError matrix (the shape of Wine's completion-port
 * tests): empty poll, post/get, GQCSEx batches and count 0, close while waiting, LIFO
 * release, concurrency with a sleeping worker, bad handles. */
#include "check.h"

static HANDLE port;

/* A worker that waits on the port and reports what it got, in order. */
static volatile LONG order[8];
static volatile LONG order_n;

static DWORD WINAPI waiter(LPVOID arg) {
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov;
    if (!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 10000)) return 1000 + GetLastError();
    order[InterlockedIncrement(&order_n) - 1] = (LONG)(ULONG_PTR)arg;
    return (DWORD)key;
}

static DWORD WINAPI abandoned(LPVOID arg) {
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov = (LPOVERLAPPED)arg;
    BOOL r = GetQueuedCompletionStatus((HANDLE)arg, &bytes, &key, &ov, INFINITE);
    return (!r && ov == NULL) ? GetLastError() : 1;
}

/* Concurrency 1: a worker takes a packet, then sleeps; while it sleeps it does not count,
 * so a second worker gets the next packet. */
static volatile LONG second_got;
static DWORD WINAPI sleeper(LPVOID arg) {
    HANDLE p = (HANDLE)arg;
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov;
    if (!GetQueuedCompletionStatus(p, &bytes, &key, &ov, 10000)) return 1;
    /* Sleep counts as blocking: the other worker may run meanwhile. */
    for (int i = 0; i < 500 && !second_got; i++) Sleep(10);
    return second_got ? 0 : 2;
}
static DWORD WINAPI second(LPVOID arg) {
    HANDLE p = (HANDLE)arg;
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov;
    if (!GetQueuedCompletionStatus(p, &bytes, &key, &ov, 10000)) return 1;
    InterlockedExchange(&second_got, 1);
    return 0;
}

/* The spinning worker: takes a packet, spins (never blocks) until told to stop, then takes
 * the next packet and returns its key. */
static HANDLE spin_port, spinning;
static volatile LONG stop_spinning;
static DWORD WINAPI spinner(LPVOID arg) {
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov;
    (void)arg;
    if (!GetQueuedCompletionStatus(spin_port, &bytes, &key, &ov, 10000)) return 100;
    SetEvent(spinning);
    while (!InterlockedCompareExchange(&stop_spinning, 0, 0)) {
    }
    if (!GetQueuedCompletionStatus(spin_port, &bytes, &key, &ov, 10000)) return 101;
    return (DWORD)key;
}
/* Waits 200 ms while the spinner holds the only slot: WAIT_TIMEOUT expected. */
static DWORD WINAPI late_waiter(LPVOID arg) {
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED ov;
    (void)arg;
    if (GetQueuedCompletionStatus(spin_port, &bytes, &key, &ov, 200)) return 0;
    return GetLastError();
}

int main(void) {
    DWORD bytes = 123;
    ULONG_PTR key = 456;
    LPOVERLAPPED ov = (LPOVERLAPPED)1;
    OVERLAPPED mine;
    DWORD code;

    port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    CHECK(port != NULL);

    /* Empty poll: FALSE, NULL overlapped, WAIT_TIMEOUT. */
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0), WAIT_TIMEOUT);
    CHECK(ov == NULL);
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 20), WAIT_TIMEOUT);

    /* Post/get round trip: the values come back untouched, the OVERLAPPED too. */
    memset(&mine, 0, sizeof mine);
    CHECK(PostQueuedCompletionStatus(port, 7, 42, &mine));
    CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 1000));
    CHECK(bytes == 7 && key == 42 && ov == &mine && mine.Internal == 0);
    CHECK(PostQueuedCompletionStatus(port, 0, 0, NULL));
    CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 1000));
    CHECK(ov == NULL && bytes == 0 && key == 0);

    /* GQCSEx: FIFO batches, a partial batch, count 0, empty poll. */
    for (int i = 0; i < 5; i++) CHECK(PostQueuedCompletionStatus(port, (DWORD)i, (ULONG_PTR)(100 + i), NULL));
    OVERLAPPED_ENTRY entries[3];
    ULONG n = 99;
    CHECK(GetQueuedCompletionStatusEx(port, entries, 3, &n, 1000, FALSE));
    CHECK(n == 3 && entries[0].lpCompletionKey == 100 && entries[2].lpCompletionKey == 102);
    CHECK(entries[1].dwNumberOfBytesTransferred == 1);
    CHECK(GetQueuedCompletionStatusEx(port, entries, 3, &n, 1000, FALSE));
    CHECK(n == 2 && entries[0].lpCompletionKey == 103 && entries[1].lpCompletionKey == 104);
    CHECK_FAILS_WITH(GetQueuedCompletionStatusEx(port, entries, 0, &n, 0, FALSE), ERROR_INVALID_PARAMETER);
    CHECK_FAILS_WITH(GetQueuedCompletionStatusEx(port, entries, 3, &n, 0, FALSE), WAIT_TIMEOUT);
    CHECK(n == 0);

    /* LIFO release: three threads wait, in order 1, 2, 3; the first packet goes to 3. */
    HANDLE t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = CreateThread(NULL, 0, waiter, (LPVOID)(ULONG_PTR)(i + 1), 0, NULL);
        CHECK(t[i] != NULL);
        Sleep(100); /* let it start waiting before the next one */
    }
    for (int i = 0; i < 3; i++) {
        CHECK(PostQueuedCompletionStatus(port, 0, (ULONG_PTR)(10 + i), NULL));
        Sleep(100); /* one packet at a time, so the order of wake-ups is the order of release */
    }
    CHECK(WaitForMultipleObjects(3, t, TRUE, 10000) == WAIT_OBJECT_0);
    CHECK(order_n == 3 && order[0] == 3 && order[1] == 2 && order[2] == 1);
    CHECK(GetExitCodeThread(t[2], &code) && code == 10);
    CHECK(GetExitCodeThread(t[0], &code) && code == 12);
    for (int i = 0; i < 3; i++) CHECK(CloseHandle(t[i]));

    /* Close while waiting: the waiter gets FALSE, NULL, ERROR_ABANDONED_WAIT_0. */
    HANDLE p2 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    HANDLE w = CreateThread(NULL, 0, abandoned, p2, 0, NULL);
    Sleep(100);
    CHECK(WaitForSingleObject(w, 0) == WAIT_TIMEOUT);
    CHECK(GetExitCodeThread(w, &code) && code == STILL_ACTIVE);
    CHECK(CloseHandle(p2));
    CHECK(WaitForSingleObject(w, 10000) == WAIT_OBJECT_0);
    CHECK(GetExitCodeThread(w, &code) && code == ERROR_ABANDONED_WAIT_0);
    CHECK(CloseHandle(w));
    /* The closed port is now a stale handle. */
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(p2, &bytes, &key, &ov, 0), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(PostQueuedCompletionStatus(p2, 0, 0, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(CloseHandle(p2), ERROR_INVALID_HANDLE);

    /* Concurrency 1 with a sleeping worker: Sleep does not count, so the second runs. */
    HANDLE p3 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    HANDLE a = CreateThread(NULL, 0, sleeper, p3, 0, NULL);
    CHECK(PostQueuedCompletionStatus(p3, 0, 1, NULL));
    Sleep(50);
    HANDLE b = CreateThread(NULL, 0, second, p3, 0, NULL);
    CHECK(PostQueuedCompletionStatus(p3, 0, 2, NULL));
    HANDLE ab[2] = {a, b};
    CHECK(WaitForMultipleObjects(2, ab, TRUE, 10000) == WAIT_OBJECT_0);
    CHECK(GetExitCodeThread(a, &code) && code == 0);
    CHECK(GetExitCodeThread(b, &code) && code == 0);
    CloseHandle(a);
    CloseHandle(b);
    CloseHandle(p3);

    /* Concurrency 1 with a spinning worker: it keeps counting, so a second waiter times out
     * although a packet is queued; once the first calls GQCS again, it takes that packet. */
    HANDLE p4 = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
    spin_port = p4;
    spinning = CreateEvent(NULL, TRUE, FALSE, NULL);
    HANDLE sp = CreateThread(NULL, 0, spinner, NULL, 0, NULL);
    CHECK(PostQueuedCompletionStatus(p4, 0, 1, NULL));
    CHECK(WaitForSingleObject(spinning, 10000) == WAIT_OBJECT_0);
    CHECK(PostQueuedCompletionStatus(p4, 0, 2, NULL));
    HANDLE late = CreateThread(NULL, 0, late_waiter, NULL, 0, NULL);
    CHECK(WaitForSingleObject(late, 10000) == WAIT_OBJECT_0);
    CHECK(GetExitCodeThread(late, &code) && code == WAIT_TIMEOUT);
    InterlockedExchange(&stop_spinning, 1);
    CHECK(WaitForSingleObject(sp, 10000) == WAIT_OBJECT_0);
    CHECK(GetExitCodeThread(sp, &code) && code == 2); /* the spinner took the second packet */
    CloseHandle(sp);
    CloseHandle(late);
    CloseHandle(spinning);
    CloseHandle(p4);

    /* Bad handles: made-up, NULL, INVALID_HANDLE_VALUE, a handle of the wrong kind. */
    CHECK_FAILS_WITH(GetQueuedCompletionStatus((HANDLE)0x12345678, &bytes, &key, &ov, 0), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(NULL, &bytes, &key, &ov, 0), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(PostQueuedCompletionStatus(INVALID_HANDLE_VALUE, 0, 0, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAILS_WITH(CloseHandle((HANDLE)0xdeadbeef), ERROR_INVALID_HANDLE);
    HANDLE ev = CreateEvent(NULL, TRUE, FALSE, NULL);
    CHECK_FAILS_WITH(PostQueuedCompletionStatus(ev, 0, 0, NULL), ERROR_INVALID_HANDLE);
    CHECK(CreateIoCompletionPort((HANDLE)0x777, port, 1, 0) == NULL && GetLastError() == ERROR_INVALID_HANDLE);
    CHECK(CreateIoCompletionPort(INVALID_HANDLE_VALUE, port, 1, 0) == NULL &&
          GetLastError() == ERROR_INVALID_PARAMETER);
    CHECK(WaitForSingleObject((HANDLE)0x999, 0) == WAIT_FAILED && GetLastError() == ERROR_INVALID_HANDLE);

    /* Events: manual reset stays set; auto reset releases one wait. */
    CHECK(WaitForSingleObject(ev, 0) == WAIT_TIMEOUT);
    CHECK(SetEvent(ev));
    CHECK(WaitForSingleObject(ev, 0) == WAIT_OBJECT_0 && WaitForSingleObject(ev, 0) == WAIT_OBJECT_0);
    CHECK(ResetEvent(ev) && WaitForSingleObject(ev, 0) == WAIT_TIMEOUT);
    HANDLE auto_ev = CreateEvent(NULL, FALSE, TRUE, NULL);
    CHECK(WaitForSingleObject(auto_ev, 0) == WAIT_OBJECT_0 && WaitForSingleObject(auto_ev, 0) == WAIT_TIMEOUT);
    CloseHandle(ev);
    CloseHandle(auto_ev);

    /* System information: at least one processor, a page size; thread ids differ. */
    SYSTEM_INFO si;
    ZeroMemory(&si, sizeof si);
    GetSystemInfo(&si);
    CHECK(si.dwNumberOfProcessors >= 1 && si.dwPageSize >= 4096 && si.dwActiveProcessorMask != 0);
    CHECK(GetCurrentThreadId() != 0);

    /* Last error is per thread. */
    SetLastError(1234);
    CHECK(GetLastError() == 1234 && WSAGetLastError() == 1234);
    DWORD t0 = GetTickCount();
    Sleep(20);
    CHECK(GetTickCount() - t0 >= 20);

    CHECK(CloseHandle(port));
    DONE("port");
}
