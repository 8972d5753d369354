//! Linux batch I/O for UDP: one `recvmmsg` takes every queued datagram (up to
//! the batch size) and one `sendmmsg` sends all their answers, instead of two
//! syscalls per query. The `unsafe` is confined here behind a small safe API.
//!
//! The calls go through `syscall(2)` rather than glibc's `recvmmsg`/`sendmmsg`:
//! those are pthread cancellation points, and that bookkeeping is about half
//! of their instructions; nothing here uses thread cancellation.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;
use tracing::debug;

const ADDR_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Room for one IP_PKTINFO or IPV6_PKTINFO control message (40 bytes on
/// 64-bit Linux), 8-byte aligned as cmsg headers need.
const CTRL_WORDS: usize = 8;
const CTRL_LEN: usize = CTRL_WORDS * 8;

/// Each answer buffer's allocation: no UDP answer is larger than our EDNS
/// payload (a larger one is sent truncated), so none grows.
const REPLY_CAPACITY: usize = crate::wire::EDNS_PAYLOAD as usize;

/// One received datagram.
pub struct Datagram<'a> {
    /// The bytes received (at most the slot size).
    pub data: &'a [u8],
    pub src: SocketAddr,
    /// The datagram was larger than its slot and `data` is only its start.
    pub truncated: bool,
}

/// Receive slots and their headers (`Received`), and the buffers of the
/// answers waiting to be sent (`ReplyBuffers`): two parts, so the datagrams
/// can stay borrowed while answers are queued through `Replies`, which
/// borrows both (`split`). (The per-datagram methods are `#[inline]`: when a
/// build left them as calls across codegen units they cost ~70 more
/// instructions per query.)
pub struct Batch {
    rx: Received,
    tx: ReplyBuffers,
}

/// Invariant: `bufs`, `addrs`, `iovs` and `hdrs` are allocated once in `new`
/// and never resized, so the raw pointers between them (header → iovec →
/// slot, header → address) stay valid for the life of the batch. After `new`
/// Rust only reads the slots and addresses (shared borrows) and never touches
/// `iovs`; the kernel writes slots and addresses in `recvmmsg`.
pub struct Received {
    slot: usize,
    /// Bytes from one slot's start to the next's (see `stride`).
    stride: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Per slot, the destination address the query was sent to (IP_PKTINFO /
    /// IPV6_PKTINFO), when the socket is bound to a wildcard address: the
    /// answer must leave from that address (an anycast address on `lo`, a
    /// second address of the host), or the resolver drops it. Empty otherwise.
    ctrls: Vec<[u64; CTRL_WORDS]>,
    /// How many headers the last `recv` filled.
    received: usize,
}

/// Answer k is `bufs[k]`, to the destination in `send_hdrs[k]` (which points
/// into `Received::addrs`: only `Replies`, which borrows that `Received`,
/// sets and sends them, so they are sent before the next `recv`). Answers are
/// written straight into these buffers, which are reused batch after batch
/// (cleared, never freed): no copy and no allocation per answer.
/// Invariant: `send_iovs` and `send_hdrs` are allocated once in `new` and
/// never resized (each header points at its iovec).
pub struct ReplyBuffers {
    queued: usize,
    bufs: Vec<Vec<u8>>,
    send_iovs: Vec<libc::iovec>,
    send_hdrs: Vec<libc::mmsghdr>,
}

/// The answers to the datagrams of one `recv`: borrows the batch, so a reply
/// can be queued only for a datagram of this receive (its address is read
/// from the `Received` it holds) and the batch cannot receive again (and
/// overwrite the addresses the queued headers point at) until this is gone.
pub struct Replies<'b> {
    rx: &'b Received,
    tx: &'b mut ReplyBuffers,
}

/// Slots start `slot` bytes apart rounded up to a cache line, plus one line:
/// at a stride of exactly 4096 every datagram's first bytes would fall in the
/// same L1 cache set (the set is picked by address bits 6-11), and a batch of
/// a dozen queries would evict its own headers before they are read.
fn stride(slot: usize) -> usize {
    const LINE: usize = 64;
    slot.div_ceil(LINE) * LINE + LINE
}

impl Batch {
    /// `n` slots of `slot` bytes each; `pktinfo`: the socket is bound to a
    /// wildcard address with `enable_pktinfo`, and each answer is sent from
    /// the address its query was sent to.
    pub fn new(n: usize, slot: usize, pktinfo: bool) -> Batch {
        assert!(n > 0 && slot > 0);
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers, zero lengths).
        let (zero_addr, zero_iov, mut zero_hdr) = unsafe {
            (mem::zeroed::<libc::sockaddr_storage>(), mem::zeroed::<libc::iovec>(), mem::zeroed::<libc::mmsghdr>())
        };
        zero_hdr.msg_hdr.msg_iovlen = 1;
        let stride = stride(slot);
        let mut b = Received {
            slot,
            stride,
            bufs: vec![0; n * stride],
            addrs: vec![zero_addr; n],
            iovs: vec![zero_iov; n],
            hdrs: vec![zero_hdr; n],
            ctrls: if pktinfo { vec![[0; CTRL_WORDS]; n] } else { Vec::new() },
            received: 0,
        };
        let (buf, addr, iov) = (b.bufs.as_mut_ptr(), b.addrs.as_mut_ptr(), b.iovs.as_mut_ptr());
        let ctrl = b.ctrls.as_mut_ptr();
        for (i, h) in b.hdrs.iter_mut().enumerate() {
            // SAFETY: i < n and each vector holds n elements (`bufs` n * stride bytes, and
            // slot <= stride), so every pointer is in bounds.
            unsafe {
                *iov.add(i) = libc::iovec { iov_base: buf.add(i * stride).cast(), iov_len: slot };
                h.msg_hdr.msg_name = addr.add(i).cast();
                h.msg_hdr.msg_iov = iov.add(i);
                if pktinfo {
                    h.msg_hdr.msg_control = ctrl.add(i).cast();
                }
            }
            h.msg_hdr.msg_namelen = ADDR_LEN;
            h.msg_hdr.msg_controllen = if pktinfo { CTRL_LEN } else { 0 };
        }
        let mut tx = ReplyBuffers {
            queued: 0,
            bufs: (0..n).map(|_| Vec::with_capacity(REPLY_CAPACITY)).collect(),
            send_iovs: vec![zero_iov; n],
            send_hdrs: vec![zero_hdr; n],
        };
        let iov = tx.send_iovs.as_mut_ptr();
        for (k, h) in tx.send_hdrs.iter_mut().enumerate() {
            // In bounds: `send_iovs` and `send_hdrs` both hold n elements and are never resized.
            h.msg_hdr.msg_iov = iov.wrapping_add(k);
        }
        Batch { rx: b, tx }
    }

    /// The datagrams of the last `recv`, and the queue for their answers.
    #[inline]
    pub fn split(&mut self) -> (&Received, Replies<'_>) {
        (&self.rx, Replies { rx: &self.rx, tx: &mut self.tx })
    }

    /// Wait for at least one datagram (or a signal, a shutdown, the socket's
    /// read timeout if it has one), then
    /// take whatever else is already queued, without waiting. Returns how many.
    /// Answers not yet sent with `flush` are dropped.
    #[inline]
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.tx.queued = 0;
        self.rx.recv(sock)
    }
}

impl Received {
    #[inline]
    fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        // The kernel overwrote the address (and control) lengths of the slots it filled.
        let ctrl_len = if self.ctrls.is_empty() { 0 } else { CTRL_LEN };
        for h in &mut self.hdrs[..self.received] {
            h.msg_hdr.msg_namelen = ADDR_LEN;
            h.msg_hdr.msg_controllen = ctrl_len;
        }
        self.received = 0;
        // SAFETY: `hdrs` holds hdrs.len() initialised headers whose pointers are valid (see the
        // struct's invariant); the kernel writes at most iov_len bytes per slot and msg_namelen
        // bytes per address. No timeout pointer: the wait ends with a datagram, a signal or the socket's
        // shutdown (`udp_wake`).
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                sock.as_raw_fd() as libc::c_long,
                self.hdrs.as_mut_ptr(),
                self.hdrs.len() as libc::c_long,
                libc::MSG_WAITFORONE as libc::c_long,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        if !self.ctrls.is_empty() {
            for i in 0..self.received {
                self.ctrl_for_reply(i);
            }
        }
        Ok(self.received)
    }

    /// Turn the PKTINFO received with datagram `i` into the one its answer is
    /// sent with: the source is the address the query was sent to, and the
    /// interface is left to routing (the kernel's incoming interface would pin
    /// the answer to it), except for an IPv6 link-local address, which needs
    /// it. Anything else in the control buffer is dropped.
    fn ctrl_for_reply(&mut self, i: usize) {
        let h = &mut self.hdrs[i].msg_hdr;
        let len = h.msg_controllen;
        let keep = h.msg_flags & libc::MSG_CTRUNC == 0 && len >= mem::size_of::<libc::cmsghdr>();
        if !keep {
            h.msg_controllen = 0;
            return;
        }
        // SAFETY: msg_control points at this slot's 8-byte aligned buffer of CTRL_LEN bytes, of
        // which the kernel filled `len` (<= CTRL_LEN) with well-formed cmsgs; `h` is a valid
        // msghdr for the CMSG_* walk.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                        let p = libc::CMSG_DATA(c).cast::<libc::in_pktinfo>();
                        (*p).ipi_ifindex = 0;
                        h.msg_controllen = libc::CMSG_SPACE(mem::size_of::<libc::in_pktinfo>() as u32) as usize;
                        std::ptr::copy(c.cast::<u8>(), h.msg_control.cast::<u8>(), (*c).cmsg_len);
                        return;
                    }
                    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                        let p = libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>();
                        let a = (*p).ipi6_addr.s6_addr;
                        if !(a[0] == 0xfe && a[1] & 0xc0 == 0x80) {
                            (*p).ipi6_ifindex = 0;
                        }
                        h.msg_controllen = libc::CMSG_SPACE(mem::size_of::<libc::in6_pktinfo>() as u32) as usize;
                        std::ptr::copy(c.cast::<u8>(), h.msg_control.cast::<u8>(), (*c).cmsg_len);
                        return;
                    }
                    _ => c = libc::CMSG_NXTHDR(h, c),
                }
            }
        }
        h.msg_controllen = 0;
    }

    /// Datagram `i` of the last `recv` (`None` past the end or for a source
    /// that is neither IPv4 nor IPv6).
    #[inline]
    pub fn datagram(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.received {
            return None;
        }
        let h = &self.hdrs[i];
        let src = to_std(&self.addrs[i], h.msg_hdr.msg_namelen)?;
        let len = (h.msg_len as usize).min(self.slot);
        let at = i * self.stride;
        Some(Datagram { data: &self.bufs[at..at + len], src, truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 })
    }
}

impl Replies<'_> {
    /// The buffer for the next answer, empty. Write the answer into it, then
    /// `send` it; a buffer not sent is simply handed out again.
    #[inline]
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        let buf = &mut self.tx.bufs[self.tx.queued];
        buf.clear();
        buf
    }

    /// Queue the next buffer (as written since `buffer`) as the answer to
    /// datagram `i` of the receive this borrows (at most one answer per datagram).
    #[inline]
    pub fn send(&mut self, i: usize) {
        let (rx, tx) = (self.rx, &mut *self.tx);
        let k = tx.queued;
        assert!(i < rx.received && k < tx.send_hdrs.len());
        // The buffer is not touched again until the next `recv` (`buffer` hands
        // out the ones after it), so its iovec stays valid through `flush`.
        // Only the length now: the pointer is set in `flush`. Read together
        // (one 16-byte load) right after the answer's last write, the two
        // fields would stall on store forwarding.
        tx.send_iovs[k].iov_len = tx.bufs[k].len();
        let h = &mut tx.send_hdrs[k].msg_hdr;
        // The kernel only reads the destination while sending (hence the cast to *mut).
        h.msg_name = &rx.addrs[i] as *const libc::sockaddr_storage as *mut _;
        h.msg_namelen = rx.hdrs[i].msg_hdr.msg_namelen;
        // The source address to answer from (see `ctrl_for_reply`); none: the socket's own.
        h.msg_control = rx.hdrs[i].msg_hdr.msg_control;
        h.msg_controllen = rx.hdrs[i].msg_hdr.msg_controllen;
        tx.queued += 1;
    }

    /// Queue a copy of `out` as the answer to datagram `i` (`buffer`, then `send`).
    #[cfg(test)]
    fn reply(&mut self, i: usize, out: &[u8]) {
        self.buffer().extend_from_slice(out);
        self.send(i);
    }

    /// Send every queued answer to its datagram's source, in as few
    /// `sendmmsg` calls as the kernel allows. A message the kernel refuses is
    /// skipped (logged at debug), the rest still go.
    #[inline]
    pub fn flush(&mut self, sock: &UdpSocket) {
        let tx = &mut *self.tx;
        let total = tx.queued;
        for (iov, buf) in tx.send_iovs[..total].iter_mut().zip(&mut tx.bufs) {
            iov.iov_base = buf.as_mut_ptr().cast();
        }
        let mut at = 0;
        while at < total {
            // SAFETY: send_hdrs[..total] point at addresses (and control buffers) of `self.rx` (set by `send`
            // through this `Replies`, whose shared borrow of that `Received` keeps it alive and
            // unwritten) and at their iovecs in `send_iovs` (set in `new`), which describe
            // bufs[..total] (lengths set by `send`, pointers above); none of these is changed
            // or freed until the call returns.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_sendmmsg,
                    sock.as_raw_fd() as libc::c_long,
                    tx.send_hdrs.as_mut_ptr().add(at),
                    (total - at) as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if sent > 0 {
                at += sent as usize;
                continue;
            }
            // Nothing sent: the error belongs to the first remaining message.
            let e = io::Error::last_os_error();
            if sent < 0 && e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let h = &tx.send_hdrs[at].msg_hdr;
            // SAFETY: `send` pointed msg_name at an element of `self.rx.addrs`, which is still alive.
            let dst = to_std(unsafe { &*(h.msg_name as *const libc::sockaddr_storage) }, h.msg_namelen);
            debug!(error = %e, ?dst, "udp send error");
            at += 1;
        }
        tx.queued = 0;
    }
}

/// The source address the kernel wrote, as a std address.
#[inline]
fn to_std(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match ss.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in; sockaddr_storage is large
            // and aligned enough for any socket address.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair(local: &str) -> (UdpSocket, UdpSocket) {
        let server = UdpSocket::bind(local).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let client = UdpSocket::bind(local).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (server, client)
    }

    /// Several queued datagrams come back from one `recv`, each with its source,
    /// and one `flush` answers every one; an oversized datagram is marked truncated.
    fn round_trip(local: &str) {
        let (server, client) = pair(local);
        let to = server.local_addr().unwrap();
        for i in 0..5u8 {
            client.send_to(&[i; 3], to).unwrap();
        }
        client.send_to(&[9; 100], to).unwrap();
        let mut batch = Batch::new(4, 64, false);
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let n = batch.recv(&server).unwrap();
            // Loopback queues all six before the first call: 4 (the batch size), then 2.
            assert_eq!(n, if seen.is_empty() { 4 } else { 2 });
            let (rx, mut tx) = batch.split();
            for i in 0..n {
                let d = rx.datagram(i).unwrap();
                assert_eq!(d.src, client.local_addr().unwrap());
                assert_eq!(d.truncated, d.data.len() == 64);
                seen.push(d.data.to_vec());
                let mut out = d.data.to_vec();
                out.push(0xaa);
                tx.reply(i, &out);
            }
            assert!(rx.datagram(n).is_none());
            tx.flush(&server);
        }
        assert_eq!(&seen[..5], &(0..5u8).map(|i| vec![i; 3]).collect::<Vec<_>>()[..]);
        assert_eq!(seen[5], vec![9; 64]);
        let mut buf = [0u8; 128];
        for i in 0..5u8 {
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(from, to);
            assert_eq!(&buf[..len], &[i, i, i, 0xaa]);
        }
        let len = client.recv(&mut buf).unwrap();
        assert_eq!(len, 65);
    }

    #[test]
    fn batch_round_trip_ipv4() {
        round_trip("127.0.0.1:0");
    }

    #[test]
    fn batch_round_trip_ipv6() {
        // Some build hosts have no IPv6 loopback.
        if UdpSocket::bind("[::1]:0").is_ok() {
            round_trip("[::1]:0");
        }
    }

    /// On a wildcard socket with PKTINFO, each answer leaves from the address
    /// its query was sent to (127.0.0.2 and 127.0.0.3 here), not the one
    /// routing would pick (127.0.0.1).
    #[test]
    fn answers_leave_from_the_address_asked_on_a_wildcard_socket() {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        super::super::udp::enable_pktinfo(&sock, false).unwrap();
        sock.bind(&"0.0.0.0:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        let server: UdpSocket = sock.into();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut batch = Batch::new(4, 64, true);
        for last in [2u8, 3, 1] {
            let to: SocketAddr = format!("127.0.0.{last}:{port}").parse().unwrap();
            client.send_to(&[last], to).unwrap();
            assert_eq!(batch.recv(&server).unwrap(), 1);
            let (rx, mut tx) = batch.split();
            let d = rx.datagram(0).unwrap();
            assert_eq!(d.data, [last]);
            tx.reply(0, &[last, 0xaa]);
            tx.flush(&server);
            let mut buf = [0u8; 8];
            let (len, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..len], from), (&[last, 0xaa][..], to), "answered from the address asked");
        }
    }

    #[test]
    fn recv_times_out_with_the_socket_timeout() {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let e = Batch::new(2, 16, false).recv(&sock).unwrap_err();
        assert!(matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
    }
}
