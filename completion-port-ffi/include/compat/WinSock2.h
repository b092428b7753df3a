/* Windows code compiled against libiocp: see iocp.h. Windows sources carry MSVC pragmas
 * (#pragma comment(lib, "ws2_32.lib"), #pragma warning(...)) that mean nothing here:
 * GCC and Clang are told not to warn about unknown pragmas in the files that include this. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif
#include "../iocp.h"
