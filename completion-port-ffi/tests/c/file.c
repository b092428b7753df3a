/* Files: CreateFileA's dispositions and errors, overlapped writes and reads at offsets
 * from the OVERLAPPED, end of file (ERROR_HANDLE_EOF), GetFileSizeEx, FlushFileBuffers,
 * GetOverlappedResult, HasOverlappedIoCompleted, CancelIoEx with nothing pending, double
 * association, and the synchronous path of a handle with no port. */
#include "check.h"
#include <unistd.h>

int main(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/iocp-file-test-%d", (int)getpid());
    DWORD bytes;
    ULONG_PTR key;
    LPOVERLAPPED got;

    HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_FLAG_OVERLAPPED, NULL);
    CHECK(f != INVALID_HANDLE_VALUE);
    HANDLE again = CreateFileA(path, GENERIC_READ, 0, NULL, CREATE_NEW, 0, NULL);
    CHECK(again == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_EXISTS);
    again = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_ALWAYS, 0, NULL);
    CHECK(again != INVALID_HANDLE_VALUE && GetLastError() == ERROR_ALREADY_EXISTS);
    CHECK(CloseHandle(again));
    CHECK(CreateFileA("/nonexistent/dir/x", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL) == INVALID_HANDLE_VALUE);
    CHECK(GetLastError() == ERROR_PATH_NOT_FOUND || GetLastError() == ERROR_FILE_NOT_FOUND);

    HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0);
    CHECK(CreateIoCompletionPort(f, port, 77, 0) == port);
    /* Associating twice is refused. */
    CHECK(CreateIoCompletionPort(f, port, 78, 0) == NULL && GetLastError() == ERROR_INVALID_PARAMETER);

    /* Nothing pending: CancelIoEx fails with ERROR_NOT_FOUND. */
    CHECK_FAILS_WITH(CancelIoEx(f, NULL), ERROR_NOT_FOUND);

    /* Two overlapped writes at offsets 0 and 4096: each completes with a packet. */
    static char block_a[4096], block_b[100];
    memset(block_a, 'a', sizeof block_a);
    memset(block_b, 'b', sizeof block_b);
    OVERLAPPED w1, w2;
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    w2.Offset = 4096;
    CHECK_FAILS_WITH(WriteFile(f, block_a, sizeof block_a, NULL, &w1), ERROR_IO_PENDING);
    CHECK_FAILS_WITH(WriteFile(f, block_b, sizeof block_b, NULL, &w2), ERROR_IO_PENDING);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &got, 5000));
        CHECK(key == 77);
        if (got == &w1) { CHECK(bytes == 4096); seen |= 1; }
        if (got == &w2) { CHECK(bytes == 100); seen |= 2; }
    }
    CHECK(seen == 3);
    CHECK(HasOverlappedIoCompleted(&w1) && w1.InternalHigh == 4096);
    CHECK(GetOverlappedResult(f, &w2, &bytes, FALSE) && bytes == 100);
    CHECK(FlushFileBuffers(f));
    LARGE_INTEGER size;
    CHECK(GetFileSizeEx(f, &size) && size.QuadPart == 4196);

    /* A read across the end: the bytes there are. A read at the end: ERROR_HANDLE_EOF. */
    char buf[256];
    OVERLAPPED r;
    memset(&r, 0, sizeof r);
    r.Offset = 4096 - 10;
    memset(buf, 0, sizeof buf);
    CHECK_FAILS_WITH(ReadFile(f, buf, sizeof buf, NULL, &r), ERROR_IO_PENDING);
    CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &got, 5000));
    CHECK(got == &r && bytes == 110 && buf[0] == 'a' && buf[9] == 'a' && buf[10] == 'b' && buf[109] == 'b');
    memset(&r, 0, sizeof r);
    r.Offset = 4196;
    CHECK_FAILS_WITH(ReadFile(f, buf, sizeof buf, NULL, &r), ERROR_IO_PENDING);
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &key, &got, 5000), ERROR_HANDLE_EOF);
    CHECK(got == &r && bytes == 0 && key == 77);
    CHECK(r.Internal == STATUS_END_OF_FILE);
    CHECK_FAILS_WITH(GetOverlappedResult(f, &r, &bytes, TRUE), ERROR_HANDLE_EOF);
    /* A 64-bit offset: OffsetHigh counts. */
    memset(&r, 0, sizeof r);
    r.OffsetHigh = 1;
    CHECK_FAILS_WITH(ReadFile(f, buf, sizeof buf, NULL, &r), ERROR_IO_PENDING);
    CHECK_FAILS_WITH(GetQueuedCompletionStatus(port, &bytes, &key, &got, 5000), ERROR_HANDLE_EOF);
    CHECK(got == &r);
    CHECK(CloseHandle(f));
    CHECK_FAILS_WITH(ReadFile(f, buf, sizeof buf, NULL, &r), ERROR_INVALID_HANDLE);

    /* No port: overlapped reads run synchronously, fill the OVERLAPPED, set its event. */
    HANDLE g = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    CHECK(g != INVALID_HANDLE_VALUE);
    memset(&r, 0, sizeof r);
    r.Offset = 4100;
    r.hEvent = CreateEvent(NULL, TRUE, FALSE, NULL);
    DWORD n = 0;
    BOOL ok = ReadFile(g, buf, 50, &n, &r);
    if (!ok) {
        CHECK(GetLastError() == ERROR_IO_PENDING);
        CHECK(WaitForSingleObject(r.hEvent, 5000) == WAIT_OBJECT_0);
        CHECK(GetOverlappedResult(g, &r, &n, TRUE));
    }
    CHECK(n == 50 && buf[0] == 'b' && WaitForSingleObject(r.hEvent, 0) == WAIT_OBJECT_0);
    CloseHandle(r.hEvent);
    /* Without an OVERLAPPED: from the file position. */
    CHECK(ReadFile(g, buf, 10, &n, NULL) && n == 10 && buf[0] == 'a');
    CHECK(CloseHandle(g));

    /* CreateIoCompletionPort(file, NULL, ...) creates a port and associates the file. */
    HANDLE h3 = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
    HANDLE own = CreateIoCompletionPort(h3, NULL, 5, 1);
    CHECK(own != NULL && own != port);
    memset(&r, 0, sizeof r);
    CHECK_FAILS_WITH(ReadFile(h3, buf, 4, NULL, &r), ERROR_IO_PENDING);
    CHECK(GetQueuedCompletionStatus(own, &bytes, &key, &got, 5000) && got == &r && key == 5 && bytes == 4);
    CHECK(CloseHandle(h3) && CloseHandle(own));

    CHECK(CloseHandle(port));
    unlink(path);
    DONE("file");
}
