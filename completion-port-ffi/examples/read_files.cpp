// The seed "28. IOCP" (the many-reads file program with OVERLAPPED_PLUS), ported to libiocp.
//
// Two files are associated with a port under keys 100 and 200; four 4 KiB reads are
// started (two per file, at offsets 0 and 4096), each with its own OVERLAPPED_PLUS that
// carries an id and its buffer; two worker threads take the completions.
//
// Corrections to the seed: `DWORD bytes = 0` lacked its semicolon; the key is a ULONG_PTR;
// the OVERLAPPED_PLUS** is passed as LPOVERLAPPED*; buffers from new[] are freed with
// delete[]; the per-read event is not needed (the port delivers the completion) and was
// leaked; `_getch()` is replaced by waiting until the four reads are done, after which
// closing the port ends the workers' loop (GetQueuedCompletionStatus returns FALSE), as the
// seed's `while (GetQueuedCompletionStatus(...))` intended. A read past the end of a file
// fails with ERROR_HANDLE_EOF and is reported as such.
//
// Usage: read_files FILE1 FILE2
#include <windows.h>
#include <stdio.h>
#include <string.h>

struct OVERLAPPED_PLUS : public OVERLAPPED {
    int id;
    HANDLE hFile;
    char *buff;
    OVERLAPPED_PLUS() { memset(static_cast<OVERLAPPED *>(this), 0, sizeof(OVERLAPPED)); id = 0; hFile = nullptr; buff = nullptr; }
};

static volatile LONG completed;
static HANDLE hAllDone;

BOOL Read4kAsync(HANDLE hFile, DWORD offset, int id) {
    OVERLAPPED_PLUS *op = new OVERLAPPED_PLUS;
    op->id = id;
    op->hFile = hFile;
    op->buff = new char[4096];
    op->Offset = offset;
    BOOL ok = ReadFile(op->hFile, op->buff, 4096, 0, op);
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        printf("read %d failed to start: %lu\n", id, (unsigned long)GetLastError());
        delete[] op->buff;
        delete op;
        return FALSE;
    }
    return TRUE;
}

DWORD __stdcall foo(void *p) {
    HANDLE hIOCP = (HANDLE)p;

    DWORD bytes = 0;
    ULONG_PTR key = 0;
    OVERLAPPED_PLUS *op = 0;

    for (;;) {
        BOOL ok = GetQueuedCompletionStatus(hIOCP, &bytes, &key, (LPOVERLAPPED *)&op, INFINITE);
        if (op == nullptr) break;  // the port was closed: no more completions
        if (ok) {
            printf("COMPLETE : key %lu, id %d, bytes %lu, first byte 0x%02x\n", (unsigned long)key, op->id,
                   (unsigned long)bytes, (unsigned char)op->buff[0]);
        } else {
            printf("FAILED   : key %lu, id %d, error %lu\n", (unsigned long)key, op->id,
                   (unsigned long)GetLastError());
        }
        delete[] op->buff;
        delete op;
        if (InterlockedIncrement(&completed) == 4) SetEvent(hAllDone);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: read_files FILE1 FILE2\n");
        return 2;
    }
    // 1. Create the port: at most 2 threads run at once.
    HANDLE hIOCP = CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, 2);

    HANDLE hFile1 = CreateFileA(argv[1], GENERIC_READ, FILE_SHARE_READ, 0, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, 0);
    HANDLE hFile2 = CreateFileA(argv[2], GENERIC_READ, FILE_SHARE_READ, 0, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, 0);
    if (hFile1 == INVALID_HANDLE_VALUE || hFile2 == INVALID_HANDLE_VALUE) {
        printf("Error in Open File: %lu\n", (unsigned long)GetLastError());
        return 1;
    }

    // 2. Associate the files with the port (completion keys 100 and 200).
    CreateIoCompletionPort(hFile1, hIOCP, 100, 2);
    CreateIoCompletionPort(hFile2, hIOCP, 200, 2);

    // 3. Threads that wait on the port's completion queue.
    hAllDone = CreateEvent(0, TRUE, FALSE, 0);
    HANDLE hThread1 = CreateThread(0, 0, foo, (void *)hIOCP, 0, 0);
    HANDLE hThread2 = CreateThread(0, 0, foo, (void *)hIOCP, 0, 0);

    // Asynchronous requests.
    int started = Read4kAsync(hFile1, 0, 1) + Read4kAsync(hFile1, 4096, 2) + Read4kAsync(hFile2, 0, 3) +
                  Read4kAsync(hFile2, 4096, 4);

    printf("Main Continue .. \n");
    if (started == 4) WaitForSingleObject(hAllDone, INFINITE);

    CloseHandle(hIOCP);  // the workers' GetQueuedCompletionStatus returns FALSE: they exit
    HANDLE threads[2] = {hThread1, hThread2};
    WaitForMultipleObjects(2, threads, TRUE, INFINITE);
    CloseHandle(hThread1);
    CloseHandle(hThread2);
    CloseHandle(hAllDone);
    CloseHandle(hFile1);
    CloseHandle(hFile2);
    printf("done: %ld reads completed\n", (long)completed);
    return completed == 4 ? 0 : 1;
}
