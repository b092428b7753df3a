/* Windows code compiled against libiocp: see iocp.h. */
#include "../iocp.h"
