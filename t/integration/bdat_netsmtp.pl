#!/usr/bin/perl
# t/integration/bdat_netsmtp.pl: send one message with BDAT through Perl's
# Net::SMTP (libnet, part of Debian's perl): its bdat() and bdatlast()
# frame the chunks and read the replies. Used by test_bdat.c.
#
# Usage: bdat_netsmtp.pl PORT SOURCE-ADDRESS RECIPIENT CHUNKS < message
# The message read from stdin is sent in CHUNKS pieces of about equal
# size, the last with BDAT LAST. Prints each reply; exits 0 when every
# reply was positive, 1 otherwise, 2 when CHUNKING is not offered.
#
# libnet turns bdat() on by itself only with BODY=BINARYMIME, which needs
# BINARYMIME offered; tempomx offers CHUNKING alone (RFC 3030 allows it),
# so after checking the EHLO reply this script sets libnet's chunking flag.
use strict;
use warnings;
use Net::SMTP;

my ($port, $src, $rcpt, $n) = @ARGV;
die "usage: $0 port source rcpt chunks\n" unless defined $n && $n >= 1;
binmode STDIN;
my $msg = do { local $/; <STDIN> };

my $smtp = Net::SMTP->new("127.0.0.1", Port => $port, LocalAddr => $src,
                          Hello => "netsmtp.example.net", Timeout => 20)
    or die "connect: $@\n";
unless (defined $smtp->supports("CHUNKING")) {
	print "no CHUNKING in the EHLO reply\n";
	exit 2;
}
${*$smtp}{'net_smtp_chunking'} = 1;
my $ok = $smtp->mail('sender@example.net') && $smtp->to($rcpt);
print "MAIL/RCPT: ", $smtp->code, " ", $smtp->message;
my $size = int((length($msg) + $n - 1) / $n);
my $off = 0;
for (my $i = 1; $ok && $i <= $n; $i++) {
	my $piece = substr($msg, $off, $i == $n ? length($msg) - $off : $size);
	$off += length $piece;
	$ok = $i == $n ? $smtp->bdatlast($piece) : $smtp->bdat($piece);
	print "BDAT ", length($piece), ($i == $n ? " LAST" : ""), ": ", $smtp->code, " ",
	    $smtp->message;
}
$smtp->quit;
exit($ok ? 0 : 1);
