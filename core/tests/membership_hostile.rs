//! A hostile member against SWIM membership, over real QUIC: fake members by the
//! thousand, oversized metadata, packets in another member's name, forged and freezing
//! quota adverts, a forged generation for a real member, and dials to made-up addresses.
//! The victim's membership stays bounded and its real members stay up.

mod common;
#[path = "common/membership.rs"]
mod swim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use foca::{Member, Message};
use memmesh::blocks::Placement;
use memmesh::membership::adverts::Advert;
use memmesh::membership::limits::{MAX_MEMBERS, SWIM_DIALS_PER_SECOND, SWIM_DIAL_BURST};
use memmesh::membership::member::MemberId;
use memmesh::{Node, NodeId, PeerState};
use swim::{error_kind, fake, fakes, packet, DialSink, SwimPeer};

fn alive(n: &Node, id: NodeId) -> bool {
    n.peers()
        .iter()
        .any(|p| p.id == id && p.state == PeerState::Alive)
}

/// Fake members the victim shows (in `peers()`) and holds (in SWIM).
async fn fake_count(n: &Node, peer: &SwimPeer) -> (usize, usize) {
    let shown = n
        .peers()
        .iter()
        .filter(|p| p.name.starts_with("fake"))
        .count();
    let held = peer
        .held()
        .await
        .iter()
        .filter(|m| m.id().name.starts_with("fake"))
        .count();
    (shown, held)
}

fn quota_free(n: &Node, id: NodeId) -> Option<u64> {
    n.peers()
        .into_iter()
        .find(|p| p.id == id)
        .and_then(|p| p.quota_free)
}

/// A victim, an honest member it sees alive, and a hostile member connected to it.
async fn cluster(honest_quota: Option<u64>) -> (Node, Node, SwimPeer) {
    let victim = node("victim").await;
    let mut b = builder("honest").bootstrap([victim.addr().to_string()]);
    if let Some(q) = honest_quota {
        b = b.memory_quota(q);
    }
    let honest = b.start().await.unwrap();
    assert!(
        eventually(Duration::from_secs(20), || alive(&victim, honest.id())).await,
        "the honest member never joined"
    );
    let peer = SwimPeer::join(&victim).await;
    (victim, honest, peer)
}

async fn stop(nodes: &[&Node]) {
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_fifty_thousand_fake_members_is_refused() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    let reply = peer.sync(&fakes(50_000, sink.addr)).await;
    assert_eq!(error_kind(&reply).as_deref(), Some("InvalidInput"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake_count(&victim, &peer).await, (0, 0));
    assert!(victim.peers().len() <= MAX_MEMBERS);
    assert!(alive(&victim, honest.id()));
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_members_never_grow_the_membership_past_its_bound() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    // Full-state syncs each within the per-message bound, and gossip packets, all with
    // members nobody has heard of: together three times what the victim may hold.
    for _ in 0..3 {
        let reply = peer.sync(&fakes(MAX_MEMBERS - 24, sink.addr)).await;
        assert_eq!(error_kind(&reply), None);
    }
    for _ in 0..5 {
        peer.gossip(&fakes(200, sink.addr), &[]).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = peer.held().await.len();
    assert!(held <= MAX_MEMBERS, "{held} members held");
    let (shown, held_fakes) = fake_count(&victim, &peer).await;
    assert!(
        held_fakes > MAX_MEMBERS / 2,
        "fakes are held up to the bound"
    );
    // Members only heard of are never shown to the application (nor to the cache).
    assert_eq!(shown, 0);
    assert!(victim.peers().len() <= 3, "{:?}", victim.peers().len());
    assert!(alive(&victim, honest.id()));

    // A real node that joins now still gets in: a member that speaks for itself takes the
    // place of one only heard of.
    let newcomer = builder("newcomer")
        .bootstrap([victim.addr().to_string()])
        .start()
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || alive(&victim, newcomer.id())).await,
        "the newcomer was never admitted"
    );
    assert!(alive(&victim, honest.id()));
    assert!(peer.held().await.len() <= MAX_MEMBERS);
    stop(&[&victim, &honest, &newcomer]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_member_names_and_address_lists_are_refused() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    let long_name = fake(&"x".repeat(4096), vec![sink.addr]);
    let many_addrs = fake(
        "fake-many-addrs",
        (0..1000u16)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], 1000 + p)))
            .collect(),
    );
    for bad in [&long_name, &many_addrs] {
        let reply = peer.sync(std::slice::from_ref(bad)).await;
        assert_eq!(error_kind(&reply).as_deref(), Some("InvalidInput"));
        let reply = peer.gossip(std::slice::from_ref(bad), &[]).await;
        assert_eq!(error_kind(&reply).as_deref(), Some("InvalidInput"));
    }
    // Its own identity with an oversized name, in a packet's header.
    let mut me = peer.me.clone();
    me.name = "y".repeat(4096);
    let bytes = packet(&me, &peer.victim(), Message::Gossip, &[], &[]);
    let reply = peer.send_raw_packet(&bytes).await;
    assert_eq!(error_kind(&reply).as_deref(), Some("InvalidInput"));

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        victim
            .peers()
            .iter()
            .all(|p| p.name.len() <= 255 && p.addrs.len() <= 16),
        "{:?}",
        victim.peers()
    );
    assert!(peer
        .held()
        .await
        .iter()
        .all(|m| m.id().name.len() <= 255 && m.id().addrs.len() <= 16));
    assert!(alive(&victim, honest.id()));
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swim_packet_in_another_members_name_is_refused() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    let spoofed = MemberId {
        id: honest.id(),
        generation: 1,
        name: "honest".into(),
        addrs: vec![honest.addr()],
        role: memmesh::Role::Member,
    };
    let bytes = packet(
        &spoofed,
        &peer.victim(),
        Message::Gossip,
        &fakes(50, sink.addr),
        &[],
    );
    let reply = peer.send_raw_packet(&bytes).await;
    assert_eq!(error_kind(&reply).as_deref(), Some("Unauthorized"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake_count(&victim, &peer).await, (0, 0));
    assert!(alive(&victim, honest.id()));
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_quota_advert_for_another_node_is_ignored() {
    let (victim, honest, peer) = cluster(Some(8 << 20)).await;
    assert!(
        eventually(Duration::from_secs(20), || quota_free(&victim, honest.id())
            == Some(8 << 20))
        .await,
        "the honest advert never arrived"
    );
    // Speaking for the honest node: all of its quota free, and a sequence number that
    // would freeze its advert for good.
    let forged = Advert {
        id: honest.id(),
        seq: u64::MAX,
        quota: u64::MAX,
        free: u64::MAX,
        disk_free: u64::MAX,
    };
    peer.gossip(&[], &[forged.encode().unwrap()]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(quota_free(&victim, honest.id()), Some(8 << 20));
    // The honest node's own later adverts still get through.
    honest
        .blocks()
        .unwrap()
        .put(vec![7u8; 4096], Placement::Local)
        .await
        .unwrap();
    let free = honest.blocks().unwrap().local_stats().free;
    assert!(free < 8 << 20);
    assert!(
        eventually(Duration::from_secs(20), || quota_free(&victim, honest.id())
            == Some(free))
        .await,
        "{:?}",
        quota_free(&victim, honest.id())
    );
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advert_with_seq_max_does_not_freeze_later_adverts() {
    let (victim, honest, peer) = cluster(None).await;
    let advert = |seq, free| {
        Advert {
            id: peer.raw.id,
            seq,
            quota: 1 << 20,
            free,
            disk_free: 0,
        }
        .encode()
        .unwrap()
    };
    peer.gossip(&[], &[advert(5_000, 100)]).await;
    assert!(
        eventually(Duration::from_secs(10), || quota_free(&victim, peer.raw.id)
            == Some(100))
        .await
    );
    peer.gossip(&[], &[advert(u64::MAX, 7)]).await;
    peer.gossip(&[], &[advert(5_001, 50)]).await;
    assert!(
        eventually(Duration::from_secs(10), || quota_free(&victim, peer.raw.id)
            == Some(50))
        .await,
        "{:?}",
        quota_free(&victim, peer.raw.id)
    );
    // Free is capped at the advertised quota.
    peer.gossip(&[], &[advert(5_002, u64::MAX)]).await;
    assert!(
        eventually(Duration::from_secs(10), || quota_free(&victim, peer.raw.id)
            == Some(1 << 20))
        .await,
        "{:?}",
        quota_free(&victim, peer.raw.id)
    );
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_generation_for_a_real_member_does_not_lock_it_out() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    let impostor = Member::alive(MemberId {
        id: honest.id(),
        generation: u64::MAX - 1,
        name: "impostor".into(),
        addrs: vec![sink.addr],
        role: memmesh::Role::Member,
    });
    // Keep telling the victim the honest node restarted with a generation it can never
    // beat, for longer than failure detection takes.
    for _ in 0..10 {
        peer.gossip(std::slice::from_ref(&impostor), &[]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        eventually(Duration::from_secs(20), || alive(&victim, honest.id())).await,
        "{:?}",
        victim.peers()
    );
    stop(&[&victim, &honest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_to_fake_members_dial_at_a_bounded_rate() {
    let (victim, honest, peer) = cluster(None).await;
    let sink = DialSink::bind().await;
    let start = Instant::now();
    let reply = peer.sync(&fakes(500, sink.addr)).await;
    assert_eq!(error_kind(&reply), None);
    assert!(
        eventually(Duration::from_secs(20), || sink.dials_from(victim.addr())
            > 0)
        .await,
        "the victim never probed a fake member"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Each node (the honest one hears of the fakes from the victim) has its own budget.
    let secs = start.elapsed().as_secs_f64();
    let bound = SWIM_DIAL_BURST as f64 + SWIM_DIALS_PER_SECOND as f64 * (secs + 1.0);
    for n in [&victim, &honest] {
        let dials = sink.dials_from(n.addr());
        assert!(
            dials as f64 <= bound,
            "{}: {dials} dials in {secs:.1} s (bound {bound})",
            n.name()
        );
    }
    assert!(alive(&victim, honest.id()));
    stop(&[&victim, &honest]).await;
}
