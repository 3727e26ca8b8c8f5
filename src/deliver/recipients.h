/*
 * recipients.h: forwarding header. The recipients tables moved to
 * src/common/recipients.c with their header in include/recipients.h;
 * this file remains only while src/smtpd/session.c still includes
 * "../deliver/recipients.h", and goes once it includes "recipients.h".
 */
#include <recipients.h>
