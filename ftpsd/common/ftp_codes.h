/* FTP reply codes by what they mean (RFC 959 section 4.2, RFC 2228, RFC 2428,
 * RFC 3659, RFC 4217, RFC 7151), after vsftpd's ftpcodes.h. Several names
 * may share a number: the name says why this reply, the number is what the
 * client sees. No reply is sent with a bare number. */
#pragma once

/* 1yz: the command goes on; another reply follows */
#define FTP_DATACONN 150 /* opening the data connection */

/* 2yz: done */
#define FTP_CMDOK 200 /* generic: NOOP, SITE CHMOD, OPTS, test hooks */
#define FTP_NOOPOK 200
#define FTP_TYPEOK 200
#define FTP_MODEOK 200
#define FTP_STRUOK 200
#define FTP_PORTOK 200
#define FTP_EPSVALLOK 200
#define FTP_PBSZOK 200
#define FTP_PROTOK 200
#define FTP_CCCOK 200
#define FTP_OPTSOK 200
#define FTP_CHMODOK 200
#define FTP_ALLOOK 202     /* superfluous at this site */
#define FTP_FEAT 211       /* FEAT's list */
#define FTP_STATOK 211     /* STAT without an argument: the server's status */
#define FTP_STATFILE_OK 213 /* STAT with a path, or during a transfer */
#define FTP_SIZEOK 213
#define FTP_MDTMOK 213
#define FTP_MFMTOK 213
#define FTP_HASHOK 213
#define FTP_HELP 214
#define FTP_SITEHELP 214
#define FTP_SYSTOK 215
#define FTP_GREET 220      /* the banner, and REIN's new start */
#define FTP_HOSTOK 220     /* RFC 7151 */
#define FTP_GOODBYE 221
#define FTP_ABOR_NOCONN 225 /* ABOR with no transfer running */
#define FTP_TRANSFEROK 226
#define FTP_ABOROK 226
#define FTP_PASVOK 227
#define FTP_EPSVOK 229
#define FTP_LOGINOK 230
#define FTP_LOGIN_CERTOK 232 /* logged in by the TLS client certificate (RFC 4217) */
#define FTP_AUTHOK 234
#define FTP_CWDOK 250
#define FTP_DELEOK 250
#define FTP_RMDIROK 250
#define FTP_RENAMEOK 250
#define FTP_MLSTOK 250
#define FTP_PWDOK 257
#define FTP_MKDIROK 257

/* 3yz: the command waits for another */
#define FTP_GIVEPWORD 331
#define FTP_RESTOK 350
#define FTP_RNFROK 350

/* 4yz: failed, may work later */
#define FTP_CLOSING 421      /* service not available: the connection closes */
#define FTP_IDLE_TIMEOUT 421 /* idle or login timeout: the connection closes */
#define FTP_TLS_FAIL 421     /* TLS refused or failed: the connection closes */
#define FTP_BADSENDCONN 425  /* cannot open (or use) the data connection */
#define FTP_BADSENDNET 426   /* the data connection closed: transfer aborted */
#define FTP_FILETMPFAIL 450  /* file action not taken for now */
#define FTP_LOCALERR 451     /* a local error while processing */
#define FTP_NOSPACE 452      /* insufficient storage */

/* 5yz: failed */
#define FTP_BADCMD 500        /* not a command, not known, or too long */
#define FTP_BADARGS 501       /* syntax error in the argument */
#define FTP_COMMANDNOTIMPL 502
#define FTP_BADSEQ 503        /* bad sequence of commands */
#define FTP_NEEDUSER 503      /* PASS without USER */
#define FTP_NEEDRNFR 503      /* RNTO without RNFR */
#define FTP_BADPARAM 504      /* not implemented for that argument */
#define FTP_BADAUTH 504       /* an AUTH mechanism we do not have */
#define FTP_NOSUCHPROT 504    /* a PROT level RFC 4217 does not define */
#define FTP_DATAPROT_REFUSED 521 /* the data channel's protection is not acceptable */
#define FTP_EPSVBAD 522       /* network protocol not supported (RFC 2428) */
#define FTP_DATATLSBAD 522    /* the data connection's TLS is not acceptable */
#define FTP_LOGINERR 530      /* not logged in */
#define FTP_PROT_DENIED 533   /* command protection level denied for policy reasons */
#define FTP_POLICY_DENIED 534 /* request denied for policy reasons */
#define FTP_NOHANDLEPROT 536  /* PROT level not supported by the mechanism */
#define FTP_FILEFAIL 550      /* file unavailable (not found, no access) */
#define FTP_NOPERM 550        /* refused to this user */
#define FTP_EXCEEDED 552      /* storage allocation exceeded */
#define FTP_BADFILENAME 553   /* file name not allowed */
#define FTP_BADREST 554       /* REST offset beyond the end of the file */
