/*
 * iocp.h: the Win32 completion-port API on Linux (libiocp, crate completion-port-ffi).
 *
 * Types, constants (with Windows' numeric values) and the functions libiocp exports, for
 * C11 and C++17. Include it directly, or compile with -I .../include/compat so that
 * <windows.h>, <winsock2.h> and <mswsock.h> resolve to it. Link with -liocp (or libiocp.a
 * plus -lpthread -ldl -lm).
 *
 * This header does not include the system's socket headers: their BSD prototypes
 * (int bind(int, const struct sockaddr *, socklen_t)) conflict with Winsock's
 * (int bind(SOCKET, const struct sockaddr *, int)). It defines Winsock's address
 * structures itself (same layout as Linux's) and the BSD calls as static inline functions
 * over libiocp's iocp_* exports. See docs/porting.md.
 *
 * Every function below is checked by completion-port-ffi/tests/c/symbols.c, which takes
 * the address of each and links against the library, and by tests/header.rs, which
 * checks that each exported Rust function is declared here.
 */
#ifndef IOCP_H
#define IOCP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Calling conventions and annotations (nothing on Linux) ---- */
#define WINAPI
#define CALLBACK
#define APIENTRY
#define __stdcall
#define __cdecl
#define PASCAL
#define WSAAPI
#ifndef IN
#define IN
#endif
#ifndef OUT
#define OUT
#endif
#ifndef OPTIONAL
#define OPTIONAL
#endif
#define UNREFERENCED_PARAMETER(P) ((void)(P))

/* ---- Basic types (LP64: LONG and DWORD are 32 bits, as on Windows). u_short, u_int and
 * u_long come from glibc's <sys/types.h> (u_long is 64 bits there, 32 on Windows). ---- */
typedef int BOOL;
typedef BOOL *PBOOL, *LPBOOL;
typedef unsigned char BYTE, UCHAR, BOOLEAN;
typedef BYTE *PBYTE, *LPBYTE;
typedef char CHAR;
typedef CHAR *LPSTR, *PSTR;
typedef const CHAR *LPCSTR, *PCSTR;
typedef unsigned short WORD, USHORT;
typedef short SHORT;
typedef int INT, *LPINT, *PINT;
typedef unsigned int UINT;
typedef int32_t LONG;
typedef uint32_t ULONG, DWORD;
typedef LONG *PLONG, *LPLONG;
typedef ULONG *PULONG;
typedef DWORD *PDWORD, *LPDWORD;
typedef int64_t LONGLONG, LONG64;
typedef uint64_t ULONGLONG, DWORD64, ULONG64;
typedef intptr_t INT_PTR, LONG_PTR;
typedef uintptr_t UINT_PTR, ULONG_PTR, DWORD_PTR, SIZE_T;
typedef ULONG_PTR *PULONG_PTR;
typedef SIZE_T *PSIZE_T;
typedef void VOID, *PVOID, *LPVOID;
typedef const void *LPCVOID;
typedef void *HANDLE;
typedef HANDLE *PHANDLE, *LPHANDLE;
typedef UINT_PTR SOCKET;
typedef HANDLE WSAEVENT;
typedef union _LARGE_INTEGER {
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

#define TRUE 1
#define FALSE 0
#define INFINITE 0xFFFFFFFFu
#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)
#define INVALID_SOCKET ((SOCKET)(~0))
#define SOCKET_ERROR (-1)
#define MAKEWORD(a, b) ((WORD)(((BYTE)(a)) | (((WORD)((BYTE)(b))) << 8)))
#define LOBYTE(w) ((BYTE)((w) & 0xff))
#define HIBYTE(w) ((BYTE)(((w) >> 8) & 0xff))

/* ---- Error codes (winerror.h) and wait results ---- */
#define ERROR_SUCCESS 0L
#define NO_ERROR 0L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_GEN_FAILURE 31L
#define ERROR_HANDLE_EOF 38L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_NETNAME_DELETED 64L
#define ERROR_FILE_EXISTS 80L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_BROKEN_PIPE 109L
#define ERROR_DISK_FULL 112L
#define ERROR_SEM_TIMEOUT 121L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_ABANDONED_WAIT_0 735L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_IO_INCOMPLETE 996L
#define ERROR_IO_PENDING 997L
#define ERROR_NOT_FOUND 1168L
#define ERROR_CONNECTION_REFUSED 1225L
#define ERROR_NETWORK_UNREACHABLE 1231L
#define ERROR_HOST_UNREACHABLE 1232L
#define ERROR_CONNECTION_ABORTED 1236L
#define ERROR_INTERNAL_ERROR 1359L

#define WAIT_OBJECT_0 0x00000000L
#define WAIT_ABANDONED 0x00000080L
#define WAIT_TIMEOUT 258L
#define WAIT_FAILED ((DWORD)0xFFFFFFFF)
#define STILL_ACTIVE 259L

#define STATUS_PENDING ((DWORD)0x00000103L)
#define STATUS_END_OF_FILE ((DWORD)0xC0000011L)
#define STATUS_CANCELLED ((DWORD)0xC0000120L)
#define STATUS_CONNECTION_RESET ((DWORD)0xC000020DL)

#define WSABASEERR 10000
#define WSAEINTR 10004L
#define WSAEBADF 10009L
#define WSAEACCES 10013L
#define WSAEFAULT 10014L
#define WSAEINVAL 10022L
#define WSAEMFILE 10024L
#define WSAEWOULDBLOCK 10035L
#define WSAEINPROGRESS 10036L
#define WSAEALREADY 10037L
#define WSAENOTSOCK 10038L
#define WSAEDESTADDRREQ 10039L
#define WSAEMSGSIZE 10040L
#define WSAEPROTOTYPE 10041L
#define WSAENOPROTOOPT 10042L
#define WSAEPROTONOSUPPORT 10043L
#define WSAEOPNOTSUPP 10045L
#define WSAEAFNOSUPPORT 10047L
#define WSAEADDRINUSE 10048L
#define WSAEADDRNOTAVAIL 10049L
#define WSAENETDOWN 10050L
#define WSAENETUNREACH 10051L
#define WSAECONNABORTED 10053L
#define WSAECONNRESET 10054L
#define WSAENOBUFS 10055L
#define WSAEISCONN 10056L
#define WSAENOTCONN 10057L
#define WSAESHUTDOWN 10058L
#define WSAETIMEDOUT 10060L
#define WSAECONNREFUSED 10061L
#define WSAEHOSTUNREACH 10065L
#define WSANOTINITIALISED 10093L
#define WSA_IO_PENDING (ERROR_IO_PENDING)
#define WSA_IO_INCOMPLETE (ERROR_IO_INCOMPLETE)
#define WSA_INVALID_HANDLE (ERROR_INVALID_HANDLE)
#define WSA_INVALID_PARAMETER (ERROR_INVALID_PARAMETER)
#define WSA_OPERATION_ABORTED (ERROR_OPERATION_ABORTED)
#define WSA_INFINITE (INFINITE)

/* ---- OVERLAPPED and friends ---- */
typedef struct _OVERLAPPED {
    ULONG_PTR Internal;     /* NTSTATUS: STATUS_PENDING while in flight */
    ULONG_PTR InternalHigh; /* bytes transferred */
    union {
        struct {
            DWORD Offset;
            DWORD OffsetHigh;
        };
        PVOID Pointer;
    };
    HANDLE hEvent;
} OVERLAPPED, *LPOVERLAPPED, WSAOVERLAPPED, *LPWSAOVERLAPPED;

typedef struct _OVERLAPPED_ENTRY {
    ULONG_PTR lpCompletionKey;
    LPOVERLAPPED lpOverlapped;
    ULONG_PTR Internal;
    DWORD dwNumberOfBytesTransferred;
} OVERLAPPED_ENTRY, *LPOVERLAPPED_ENTRY;

#define HasOverlappedIoCompleted(lpOverlapped) (((DWORD)(lpOverlapped)->Internal) != STATUS_PENDING)

typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

typedef DWORD(WINAPI *PTHREAD_START_ROUTINE)(LPVOID lpThreadParameter);
typedef PTHREAD_START_ROUTINE LPTHREAD_START_ROUTINE;

/* ---- Files ---- */
#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define GENERIC_ALL 0x10000000u
#define FILE_SHARE_READ 0x00000001
#define FILE_SHARE_WRITE 0x00000002
#define FILE_SHARE_DELETE 0x00000004
#define CREATE_NEW 1
#define CREATE_ALWAYS 2
#define OPEN_EXISTING 3
#define OPEN_ALWAYS 4
#define TRUNCATE_EXISTING 5
#define FILE_ATTRIBUTE_NORMAL 0x00000080
#define FILE_FLAG_OVERLAPPED 0x40000000
#define FILE_FLAG_NO_BUFFERING 0x20000000
#define FILE_FLAG_SEQUENTIAL_SCAN 0x08000000
#define FILE_SKIP_COMPLETION_PORT_ON_SUCCESS 0x1
#define FILE_SKIP_SET_EVENT_ON_HANDLE 0x2

/* ---- Completion ports ---- */
HANDLE CreateIoCompletionPort(HANDLE FileHandle, HANDLE ExistingCompletionPort, ULONG_PTR CompletionKey,
                              DWORD NumberOfConcurrentThreads);
BOOL GetQueuedCompletionStatus(HANDLE CompletionPort, LPDWORD lpNumberOfBytesTransferred,
                               PULONG_PTR lpCompletionKey, LPOVERLAPPED *lpOverlapped, DWORD dwMilliseconds);
BOOL GetQueuedCompletionStatusEx(HANDLE CompletionPort, LPOVERLAPPED_ENTRY lpCompletionPortEntries, ULONG ulCount,
                                 PULONG ulNumEntriesRemoved, DWORD dwMilliseconds, BOOL fAlertable);
BOOL PostQueuedCompletionStatus(HANDLE CompletionPort, DWORD dwNumberOfBytesTransferred, ULONG_PTR dwCompletionKey,
                                LPOVERLAPPED lpOverlapped);
BOOL CloseHandle(HANDLE hObject);

/* ---- Files and I/O control ---- */
HANDLE CreateFileA(LPCSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode,
                   LPSECURITY_ATTRIBUTES lpSecurityAttributes, DWORD dwCreationDisposition,
                   DWORD dwFlagsAndAttributes, HANDLE hTemplateFile);
#define CreateFile CreateFileA
BOOL ReadFile(HANDLE hFile, LPVOID lpBuffer, DWORD nNumberOfBytesToRead, LPDWORD lpNumberOfBytesRead,
              LPOVERLAPPED lpOverlapped);
BOOL WriteFile(HANDLE hFile, LPCVOID lpBuffer, DWORD nNumberOfBytesToWrite, LPDWORD lpNumberOfBytesWritten,
               LPOVERLAPPED lpOverlapped);
BOOL GetFileSizeEx(HANDLE hFile, PLARGE_INTEGER lpFileSize);
BOOL FlushFileBuffers(HANDLE hFile);
BOOL GetOverlappedResult(HANDLE hFile, LPOVERLAPPED lpOverlapped, LPDWORD lpNumberOfBytesTransferred, BOOL bWait);
BOOL CancelIo(HANDLE hFile);
BOOL CancelIoEx(HANDLE hFile, LPOVERLAPPED lpOverlapped);
BOOL SetFileCompletionNotificationModes(HANDLE FileHandle, UCHAR Flags);

/* ---- Threads, events, waits, time, errors ---- */
HANDLE CreateThread(LPSECURITY_ATTRIBUTES lpThreadAttributes, SIZE_T dwStackSize,
                    LPTHREAD_START_ROUTINE lpStartAddress, LPVOID lpParameter, DWORD dwCreationFlags,
                    LPDWORD lpThreadId);
BOOL GetExitCodeThread(HANDLE hThread, LPDWORD lpExitCode);
DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);
DWORD WaitForMultipleObjects(DWORD nCount, const HANDLE *lpHandles, BOOL bWaitAll, DWORD dwMilliseconds);
HANDLE CreateEventA(LPSECURITY_ATTRIBUTES lpEventAttributes, BOOL bManualReset, BOOL bInitialState, LPCSTR lpName);
#define CreateEvent CreateEventA
BOOL SetEvent(HANDLE hEvent);
BOOL ResetEvent(HANDLE hEvent);
void Sleep(DWORD dwMilliseconds);
DWORD GetTickCount(void);
ULONGLONG GetTickCount64(void);
DWORD GetLastError(void);
void SetLastError(DWORD dwErrCode);

DWORD GetCurrentThreadId(void);
typedef struct _SYSTEM_INFO {
    union {
        DWORD dwOemId;
        struct {
            WORD wProcessorArchitecture;
            WORD wReserved;
        };
    };
    DWORD dwPageSize;
    LPVOID lpMinimumApplicationAddress;
    LPVOID lpMaximumApplicationAddress;
    DWORD_PTR dwActiveProcessorMask;
    DWORD dwNumberOfProcessors;
    DWORD dwProcessorType;
    DWORD dwAllocationGranularity;
    WORD wProcessorLevel;
    WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;
void GetSystemInfo(LPSYSTEM_INFO lpSystemInfo);

#define ZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define SecureZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define FillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define CopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define MoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))

static inline LONG InterlockedIncrement(LONG volatile *Addend) { return __atomic_add_fetch(Addend, 1, __ATOMIC_SEQ_CST); }
static inline LONG InterlockedDecrement(LONG volatile *Addend) { return __atomic_sub_fetch(Addend, 1, __ATOMIC_SEQ_CST); }
static inline LONG InterlockedExchange(LONG volatile *Target, LONG Value) {
    return __atomic_exchange_n(Target, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchangeAdd(LONG volatile *Addend, LONG Value) {
    return __atomic_fetch_add(Addend, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedCompareExchange(LONG volatile *Destination, LONG Exchange, LONG Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return Comparand;
}

/* ---- Winsock: constants (Windows' values; libiocp translates them) ---- */
#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 23
#define PF_UNSPEC AF_UNSPEC
#define PF_INET AF_INET
#define PF_INET6 AF_INET6
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_IP 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_IPV6 41
#define INADDR_ANY ((ULONG)0x00000000)
#define INADDR_LOOPBACK 0x7f000001
#define INADDR_NONE 0xffffffff
#define SOL_SOCKET 0xffff
#define SO_ACCEPTCONN 0x0002
#define SO_REUSEADDR 0x0004
#define SO_KEEPALIVE 0x0008
#define SO_BROADCAST 0x0020
#define SO_SNDBUF 0x1001
#define SO_RCVBUF 0x1002
#define SO_ERROR 0x1007
#define SO_TYPE 0x1008
#define SO_UPDATE_ACCEPT_CONTEXT 0x700B
#define SO_UPDATE_CONNECT_CONTEXT 0x7010
#define TCP_NODELAY 0x0001
#define IPV6_V6ONLY 27
#define SOMAXCONN 0x7fffffff
#define SD_RECEIVE 0
#define SD_SEND 1
#define SD_BOTH 2
#define MSG_OOB 0x1
#define MSG_PEEK 0x2
#define WSA_FLAG_OVERLAPPED 0x01
#define WSADESCRIPTION_LEN 256
#define WSASYS_STATUS_LEN 128

/* ---- Winsock: structures (the layout Linux uses too) ---- */
typedef USHORT ADDRESS_FAMILY;
struct in_addr {
    union {
        struct {
            UCHAR s_b1, s_b2, s_b3, s_b4;
        } S_un_b;
        struct {
            USHORT s_w1, s_w2;
        } S_un_w;
        ULONG S_addr;
    } S_un;
};
#define s_addr S_un.S_addr
typedef struct in_addr IN_ADDR, *PIN_ADDR;
struct in6_addr {
    union {
        UCHAR Byte[16];
        USHORT Word[8];
    } u;
};
#define s6_addr u.Byte
typedef struct in6_addr IN6_ADDR;
struct sockaddr {
    ADDRESS_FAMILY sa_family;
    CHAR sa_data[14];
};
typedef struct sockaddr SOCKADDR, *PSOCKADDR, *LPSOCKADDR;
struct sockaddr_in {
    ADDRESS_FAMILY sin_family;
    USHORT sin_port;
    struct in_addr sin_addr;
    CHAR sin_zero[8];
};
typedef struct sockaddr_in SOCKADDR_IN, *PSOCKADDR_IN;
struct sockaddr_in6 {
    ADDRESS_FAMILY sin6_family;
    USHORT sin6_port;
    ULONG sin6_flowinfo;
    struct in6_addr sin6_addr;
    ULONG sin6_scope_id;
};
typedef struct sockaddr_in6 SOCKADDR_IN6;
struct sockaddr_storage {
    ADDRESS_FAMILY ss_family;
    CHAR __ss_pad1[6];
    LONGLONG __ss_align;
    CHAR __ss_pad2[112];
};
typedef struct sockaddr_storage SOCKADDR_STORAGE;
typedef struct _WSABUF {
    ULONG len;
    CHAR *buf;
} WSABUF, *LPWSABUF;
typedef struct WSAData {
    WORD wVersion;
    WORD wHighVersion;
    unsigned short iMaxSockets;
    unsigned short iMaxUdpDg;
    char *lpVendorInfo;
    char szDescription[WSADESCRIPTION_LEN + 1];
    char szSystemStatus[WSASYS_STATUS_LEN + 1];
} WSADATA, *LPWSADATA;
typedef void *LPWSAPROTOCOL_INFOA;
typedef unsigned int GROUP;
typedef void(CALLBACK *LPWSAOVERLAPPED_COMPLETION_ROUTINE)(DWORD dwError, DWORD cbTransferred,
                                                           LPWSAOVERLAPPED lpOverlapped, DWORD dwFlags);

/* Byte order (the host is little-endian on every Linux target libiocp supports). */
static inline USHORT htons(USHORT v) { return __builtin_bswap16(v); }
static inline USHORT ntohs(USHORT v) { return __builtin_bswap16(v); }
static inline ULONG htonl(ULONG v) { return __builtin_bswap32(v); }
static inline ULONG ntohl(ULONG v) { return __builtin_bswap32(v); }

/* ---- Winsock: functions ---- */
int WSAStartup(WORD wVersionRequested, LPWSADATA lpWSAData);
int WSACleanup(void);
int WSAGetLastError(void);
void WSASetLastError(int iError);
SOCKET WSASocketA(int af, int type, int protocol, LPWSAPROTOCOL_INFOA lpProtocolInfo, GROUP g, DWORD dwFlags);
#define WSASocket WSASocketA
int closesocket(SOCKET s);
int WSARecv(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
            LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WSASend(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
            LPWSAOVERLAPPED lpOverlapped, LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
BOOL AcceptEx(SOCKET sListenSocket, SOCKET sAcceptSocket, PVOID lpOutputBuffer, DWORD dwReceiveDataLength,
              DWORD dwLocalAddressLength, DWORD dwRemoteAddressLength, LPDWORD lpdwBytesReceived,
              LPOVERLAPPED lpOverlapped);
void GetAcceptExSockaddrs(PVOID lpOutputBuffer, DWORD dwReceiveDataLength, DWORD dwLocalAddressLength,
                          DWORD dwRemoteAddressLength, struct sockaddr **LocalSockaddr, LPINT LocalSockaddrLength,
                          struct sockaddr **RemoteSockaddr, LPINT RemoteSockaddrLength);
BOOL ConnectEx(SOCKET s, const struct sockaddr *name, int namelen, PVOID lpSendBuffer, DWORD dwSendDataLength,
               LPDWORD lpdwBytesSent, LPOVERLAPPED lpOverlapped);
int WSARecvFrom(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesRecvd, LPDWORD lpFlags,
                struct sockaddr *lpFrom, LPINT lpFromlen, LPWSAOVERLAPPED lpOverlapped,
                LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WSASendTo(SOCKET s, LPWSABUF lpBuffers, DWORD dwBufferCount, LPDWORD lpNumberOfBytesSent, DWORD dwFlags,
              const struct sockaddr *lpTo, int iTolen, LPWSAOVERLAPPED lpOverlapped,
              LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);
int WSAIoctl(SOCKET s, DWORD dwIoControlCode, LPVOID lpvInBuffer, DWORD cbInBuffer, LPVOID lpvOutBuffer,
             DWORD cbOutBuffer, LPDWORD lpcbBytesReturned, LPWSAOVERLAPPED lpOverlapped,
             LPWSAOVERLAPPED_COMPLETION_ROUTINE lpCompletionRoutine);

/* The extension functions, as Windows programs fetch them with WSAIoctl. */
typedef struct _GUID {
    ULONG Data1;
    USHORT Data2;
    USHORT Data3;
    UCHAR Data4[8];
} GUID;
#define SIO_GET_EXTENSION_FUNCTION_POINTER 0xC8000006u
#define WSAID_ACCEPTEX {0xb5367df1, 0xcbac, 0x11cf, {0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92}}
#define WSAID_CONNECTEX {0x25a207b9, 0xddf3, 0x4660, {0x8e, 0xe9, 0x76, 0xe5, 0x8c, 0x74, 0x06, 0x3e}}
#define WSAID_GETACCEPTEXSOCKADDRS {0xb5367df2, 0xcbac, 0x11cf, {0x95, 0xca, 0x00, 0x80, 0x5f, 0x48, 0xa1, 0x92}}
typedef BOOL(PASCAL *LPFN_ACCEPTEX)(SOCKET, SOCKET, PVOID, DWORD, DWORD, DWORD, LPDWORD, LPOVERLAPPED);
typedef BOOL(PASCAL *LPFN_CONNECTEX)(SOCKET, const struct sockaddr *, int, PVOID, DWORD, LPDWORD, LPOVERLAPPED);
typedef void(PASCAL *LPFN_GETACCEPTEXSOCKADDRS)(PVOID, DWORD, DWORD, DWORD, struct sockaddr **, LPINT,
                                                struct sockaddr **, LPINT);
static inline WSAEVENT WSACreateEvent(void) { return CreateEventA(NULL, TRUE, FALSE, NULL); }
static inline BOOL WSACloseEvent(WSAEVENT hEvent) { return CloseHandle(hEvent); }
static inline BOOL WSASetEvent(WSAEVENT hEvent) { return SetEvent(hEvent); }
static inline BOOL WSAResetEvent(WSAEVENT hEvent) { return ResetEvent(hEvent); }
static inline BOOL WSAGetOverlappedResult(SOCKET s, LPWSAOVERLAPPED lpOverlapped, LPDWORD lpcbTransfer, BOOL fWait,
                                          LPDWORD lpdwFlags) {
    if (lpdwFlags) *lpdwFlags = 0;
    return GetOverlappedResult((HANDLE)s, lpOverlapped, lpcbTransfer, fWait);
}

/* The BSD calls with Winsock's signatures: inline wrappers over libiocp's exports. */
SOCKET iocp_socket(int af, int type, int protocol);
int iocp_bind(SOCKET s, const struct sockaddr *name, int namelen);
int iocp_listen(SOCKET s, int backlog);
int iocp_connect(SOCKET s, const struct sockaddr *name, int namelen);
SOCKET iocp_accept(SOCKET s, struct sockaddr *addr, int *addrlen);
int iocp_getsockname(SOCKET s, struct sockaddr *name, int *namelen);
int iocp_getpeername(SOCKET s, struct sockaddr *name, int *namelen);
int iocp_setsockopt(SOCKET s, int level, int optname, const char *optval, int optlen);
int iocp_getsockopt(SOCKET s, int level, int optname, char *optval, int *optlen);
int iocp_shutdown(SOCKET s, int how);
int iocp_send(SOCKET s, const char *buf, int len, int flags);
int iocp_recv(SOCKET s, char *buf, int len, int flags);
int iocp_inet_pton(int family, const char *src, void *dst);
const char *iocp_inet_ntop(int family, const void *src, char *dst, size_t size);
const char *iocp_inet_ntoa(ULONG s_addr_network_order);

static inline SOCKET socket(int af, int type, int protocol) { return iocp_socket(af, type, protocol); }
static inline int bind(SOCKET s, const struct sockaddr *name, int namelen) { return iocp_bind(s, name, namelen); }
static inline int listen(SOCKET s, int backlog) { return iocp_listen(s, backlog); }
static inline int connect(SOCKET s, const struct sockaddr *name, int namelen) {
    return iocp_connect(s, name, namelen);
}
static inline SOCKET accept(SOCKET s, struct sockaddr *addr, int *addrlen) { return iocp_accept(s, addr, addrlen); }
static inline int getsockname(SOCKET s, struct sockaddr *name, int *namelen) {
    return iocp_getsockname(s, name, namelen);
}
static inline int getpeername(SOCKET s, struct sockaddr *name, int *namelen) {
    return iocp_getpeername(s, name, namelen);
}
static inline int setsockopt(SOCKET s, int level, int optname, const char *optval, int optlen) {
    return iocp_setsockopt(s, level, optname, optval, optlen);
}
static inline int getsockopt(SOCKET s, int level, int optname, char *optval, int *optlen) {
    return iocp_getsockopt(s, level, optname, optval, optlen);
}
static inline int shutdown(SOCKET s, int how) { return iocp_shutdown(s, how); }
static inline int send(SOCKET s, const char *buf, int len, int flags) { return iocp_send(s, buf, len, flags); }
static inline int recv(SOCKET s, char *buf, int len, int flags) { return iocp_recv(s, buf, len, flags); }
static inline int inet_pton(int family, const char *src, void *dst) { return iocp_inet_pton(family, src, dst); }
static inline const char *inet_ntop(int family, const void *src, char *dst, size_t size) {
    return iocp_inet_ntop(family, src, dst, size);
}
static inline char *inet_ntoa(struct in_addr in) { return (char *)iocp_inet_ntoa(in.S_un.S_addr); }
#define InetPtonA inet_pton
#define InetPton inet_pton
#define InetNtopA inet_ntop
#define InetNtop inet_ntop
#define INET_ADDRSTRLEN 22
#define INET6_ADDRSTRLEN 65
static inline ULONG inet_addr(const char *cp) {
    ULONG a;
    return iocp_inet_pton(AF_INET, cp, &a) == 1 ? a : INADDR_NONE;
}

#ifdef __cplusplus
}
#endif

#endif /* IOCP_H */
