// The seed "IOCP: How to Handle Blocking" (C++), ported to libiocp.
//
// Corrections to the seed: GetQueuedCompletionStatus takes a DWORD byte count and a
// ULONG_PTR key (the seed passed ULONG for both); and SetEvent on an unrelated event never
// wakes a thread blocked in GetQueuedCompletionStatus, so the seed's worker would hang. The
// thread is interrupted the way the seed's own check expects: closing the port makes the
// blocked call return FALSE with ERROR_ABANDONED_WAIT_0 (a posted packet works as well).
//
// Usage: interrupt_wait [milliseconds before stopping, default 200]
#include <windows.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

// Flag to control thread termination
std::atomic<bool> keepRunning(true);

// This will hold the completion port and event
HANDLE hCompletionPort;
HANDLE hExitEvent;

void workerThread() {
    OVERLAPPED *pOverlapped = nullptr;
    DWORD bytesTransferred = 0;
    ULONG_PTR completionKey = 0;

    while (keepRunning) {
        // Note that INFINITE is given
        BOOL result = GetQueuedCompletionStatus(hCompletionPort, &bytesTransferred, &completionKey, &pOverlapped,
                                                INFINITE);

        if (result) {
            // Process the completed I/O (this is just a placeholder)
            std::cout << "IO completed, bytes transferred: " << bytesTransferred << std::endl;
        } else {
            // Check if it was canceled due to the termination signal
            if (GetLastError() == ERROR_ABANDONED_WAIT_0 || !keepRunning) {
                std::cout << "Worker thread exiting (GetLastError() = " << GetLastError() << ")" << std::endl;
                break;
            }
        }
    }
}

void stopWorkerThread() {
    keepRunning = false;
    SetEvent(hExitEvent);
    // What actually interrupts the wait: closing the port.
    CloseHandle(hCompletionPort);
}

int main(int argc, char **argv) {
    int ms = argc > 1 ? std::atoi(argv[1]) : 200;
    hCompletionPort = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);

    // Create an event to signal the worker thread
    hExitEvent = CreateEvent(nullptr, TRUE, FALSE, nullptr);

    if (hCompletionPort == nullptr || hExitEvent == nullptr) {
        std::cerr << "Failed to create IOCP or event" << std::endl;
        return 1;
    }

    std::thread worker(workerThread);
    // One packet before the interruption, to show the normal path.
    PostQueuedCompletionStatus(hCompletionPort, 512, 1, nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));

    // Stop the worker thread gracefully
    stopWorkerThread();

    worker.join();
    // The port was closed by stopWorkerThread; the event is closed here.
    CloseHandle(hExitEvent);
    return 0;
}
