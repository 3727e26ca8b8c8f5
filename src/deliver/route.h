/*
 * route.h: forwarding header. The transport table moved to
 * src/common/route.c with its header in include/route.h (delivery routes
 * by it, smtpd's recipient verification parses its targets with it); this
 * file remains only while src/smtpd/verify.c still includes
 * "../deliver/route.h", and goes once it includes "route.h".
 */
#include <route.h>
