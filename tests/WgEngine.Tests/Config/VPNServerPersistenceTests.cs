using Microsoft.Extensions.Time.Testing;
using WgEngine.Config;
using WgEngine.Contracts;
using WgEngine.Crypto;
using WgEngine.Gateway;
using WgEngine.Net;
using WgEngine.Tests.Gateway;
using WgEngine.Uapi;

namespace WgEngine.Tests.Config;

[Collection("AtomicFile")]
public sealed class VPNServerPersistenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wgpersist-").FullName;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private FakeBackend? _fake;
    private string PathOf => System.IO.Path.Combine(_dir, "wg0.conf");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private VPNServer Start(WgPrivateKey? key = null, int port = 0, bool overridePort = false) => VPNServer.Start(new ServerOptions
    {
        ListenPort = port, OverrideListenPort = overridePort, PrivateKey = key, ConfigPath = PathOf, TimeProvider = _clock,
        BackendFactory = c => _fake = new FakeBackend(c),
    });

    private static WgKey NewKey() => WgPrivateKey.Generate().PublicKey;

    [Fact]
    public void A_new_file_is_created_and_a_restart_restores_every_peer()
    {
        var a = NewKey(); var b = NewKey(); var c = NewKey(); var psk = NewKey();
        WgKey serverKey;
        using (var s = Start())
        {
            serverKey = s.PublicKey;
            Assert.True(File.Exists(PathOf));
            s.AddPeer(new PeerSpec { PublicKey = a, Name = "alice", PresharedKey = psk, PersistentKeepalive = 25 });
            s.AddPeer(new PeerSpec { PublicKey = b, Name = "bob", AllowedIPs = [IpPrefix.Parse("192.168.7.0/24")], ExpiresAt = _clock.GetUtcNow().AddDays(3) });
            s.AddPeer(new PeerSpec { PublicKey = c, Name = "carol" });
            Assert.True(s.DisablePeer(c));
            s.UpdatePeer(a, new PeerUpdate { Name = "alice2" });
        }
        using (var s = Start())
        {
            Assert.Equal(serverKey, s.PublicKey);          // the file's key wins when none is given
            Assert.Equal(40000, s.ListenPort);             // the port actually bound was written
            var peers = s.GetPeers().ToDictionary(p => p.PublicKey);
            Assert.Equal(3, peers.Count);
            Assert.Equal("alice2", peers[a].Name);
            Assert.True(peers[a].HasPresharedKey);
            Assert.Equal(25, peers[a].PersistentKeepalive);
            Assert.Equal([IpPrefix.Parse("10.8.0.2/32")], peers[a].AllowedIPs);
            Assert.Equal(_clock.GetUtcNow().AddDays(3), peers[b].ExpiresAt);
            Assert.False(peers[c].Enabled);
            Assert.True(peers[a].Enabled);
            Assert.Null(_fake!.GetPeer(c));                 // disabled: not in the engine
            // carol's address stays reserved: the next allocation skips it
            var d = s.AddPeer(new PeerSpec { PublicKey = NewKey() });
            Assert.DoesNotContain(d.AllowedIPs[0], peers[c].AllowedIPs);
        }
    }

    [Fact]
    public void Start_removes_the_temp_files_of_writers_that_died_mid_write_and_keeps_a_live_writers()
    {
        // A pid that surely ran and is gone: a child process that has exited.
        using var child = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!;
        child.WaitForExit();
        int deadPid = child.Id;
        var dead = System.IO.Path.Combine(_dir, $".wg0.conf.{deadPid}.{Guid.NewGuid():N}.tmp");
        var live = System.IO.Path.Combine(_dir, $".wg0.conf.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        var other = System.IO.Path.Combine(_dir, $".other.conf.{deadPid}.{Guid.NewGuid():N}.tmp");
        foreach (var f in new[] { dead, live, other }) File.WriteAllText(f, "[Interface]\nPrivateKey = (a secret)\n");
        using (Start()) { }
        Assert.False(File.Exists(dead));
        Assert.True(File.Exists(live));    // this process may still be writing it
        Assert.True(File.Exists(other));   // another file's debris is that file's business
    }

    [Fact]
    public void An_empty_existing_file_is_refused_and_left_as_it_is()
    {
        File.WriteAllText(PathOf, " \n");
        var e = Assert.Throws<WgException>(() => Start());
        Assert.Equal("ConfigFileEmpty", e.ErrorId);
        Assert.Equal(" \n", File.ReadAllText(PathOf));   // no new key written over it
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_file_with_the_private_key_readable_by_others_starts_with_a_warning()
    {
        using (Start()) { }   // creates the file (0600, with its key)
        using (var quiet = Start()) Assert.Empty(quiet.StartWarnings);
        File.SetUnixFileMode(PathOf, (UnixFileMode)0b110_100_100);   // 0644
        using var s = Start();
        var warning = Assert.Single(s.StartWarnings);
        Assert.Contains(PathOf, warning);
        Assert.Contains("readable by other users", warning);
    }

    [Fact]
    public void The_MTU_given_reaches_the_engine_and_the_file_and_comes_back_from_the_file()
    {
        VPNServer StartWith(int? mtu) => VPNServer.Start(new ServerOptions
        {
            ListenPort = 0, ConfigPath = PathOf, TimeProvider = _clock, Mtu = mtu, BackendFactory = c => _fake = new FakeBackend(c),
        });
        using (var s = StartWith(null)) Assert.Equal(InterfaceConfig.DefaultMtu, _fake!.Config.Mtu);
        Assert.Null(WgConfigParser.ParseFile(PathOf).Interface.Mtu);
        using (var s = StartWith(1280))
        {
            Assert.Equal(1280, _fake!.Config.Mtu);
            Assert.Equal(1280, s.Mtu);
        }
        Assert.Equal(1280, WgConfigParser.ParseFile(PathOf).Interface.Mtu);
        using (var s = StartWith(null)) Assert.Equal(1280, _fake!.Config.Mtu);   // the file's
        var e = Assert.Throws<WgException>(() => StartWith(100));
        Assert.Equal("InvalidMtu", e.ErrorId);
    }

    [Fact]
    public void Every_change_is_on_disk_when_the_call_returns()
    {
        using var s = Start();
        var k = NewKey();
        string Disk() => File.ReadAllText(PathOf);
        s.AddPeer(new PeerSpec { PublicKey = k, Name = "x" });
        Assert.Contains(k.ToBase64(), Disk());
        s.UpdatePeer(k, new PeerUpdate { Name = "renamed" });
        Assert.Contains("#! Name = renamed", Disk());
        s.DisablePeer(k);
        Assert.Contains("#~ PublicKey = " + k.ToBase64(), Disk());
        s.EnablePeer(k);
        Assert.Contains("\nPublicKey = " + k.ToBase64(), Disk());
        s.RemovePeer(k);
        Assert.DoesNotContain(k.ToBase64(), Disk());
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PathOf));
    }

    [Fact]
    public void A_corrupt_file_fails_start_with_its_line_and_stays_byte_identical()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes($"[Interface]\nListenPort = 1\nAddress = 10.1.0.1/24\n\n[Peer]\nPublicKey = {NewKey()}\nAllowedIPs = 10.1.0.999/32\n");
        File.WriteAllBytes(PathOf, bytes);
        var e = Assert.Throws<WgException>(() => Start());
        Assert.Equal("ConfigParseError", e.ErrorId);
        Assert.Contains(PathOf + ", line 7:", e.Message);
        Assert.Null(_fake);                                  // nothing was started
        Assert.Equal(bytes, File.ReadAllBytes(PathOf));
    }

    [Fact]
    public void A_peer_the_policy_refuses_fails_start_naming_its_line_and_leaves_the_file()
    {
        var text = $"[Interface]\nAddress = 10.1.0.1/24\n\n[Peer]\nPublicKey = {NewKey()}\nAllowedIPs = 10.1.0.0/25\n";
        File.WriteAllText(PathOf, text);
        var e = Assert.Throws<WgException>(() => Start());
        Assert.Contains(", line 4:", e.Message);
        Assert.Contains("overlaps", e.Message);
        Assert.Equal(text, File.ReadAllText(PathOf));
        Assert.False(_fake!.IsRunning);
    }

    [Fact]
    public void A_different_private_key_than_the_files_is_a_conflict_and_explicit_port_overrides()
    {
        using var key = WgPrivateKey.Generate();
        using (Start(key)) { }
        using var other = WgPrivateKey.Generate();
        Assert.Equal("ConfigConflict", Assert.Throws<WgException>(() => Start(other)).ErrorId);
        using (var s = Start(key, port: 1234, overridePort: true)) Assert.Equal(1234, s.ListenPort);
        Assert.Equal(1234, WgConfigParser.ParseFile(PathOf).Interface.ListenPort);
    }

    [Fact]
    public void Expiry_disables_the_peer_at_its_time_with_one_timer_and_persists()
    {
        using var s = Start();
        var early = NewKey(); var late = NewKey();
        var now = _clock.GetUtcNow();
        s.AddPeer(new PeerSpec { PublicKey = late, ExpiresAt = now.AddHours(2) });
        s.AddPeer(new PeerSpec { PublicKey = early, ExpiresAt = now.AddHours(1) });
        _clock.Advance(TimeSpan.FromMinutes(59));
        Assert.True(s.GetPeerInfo(early)!.Enabled);
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.False(s.GetPeerInfo(early)!.Enabled);
        Assert.True(s.GetPeerInfo(late)!.Enabled);
        Assert.Null(_fake!.GetPeer(early));
        Assert.Contains("#~ PublicKey = " + early.ToBase64(), File.ReadAllText(PathOf));
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.False(s.GetPeerInfo(late)!.Enabled);
        // Clearing an expiry keeps the peer: enabling an expired peer clears the past expiry.
        Assert.True(s.EnablePeer(early));
        Assert.Null(s.GetPeerInfo(early)!.ExpiresAt);
        _clock.Advance(TimeSpan.FromDays(1));
        Assert.True(s.GetPeerInfo(early)!.Enabled);
    }

    [Fact]
    public void An_expiry_already_past_disables_at_once_on_add_and_on_update()
    {
        using var s = Start();
        var a = NewKey(); var b = NewKey();
        Assert.False(s.AddPeer(new PeerSpec { PublicKey = a, ExpiresAt = _clock.GetUtcNow().AddSeconds(-1) }).Enabled);
        s.AddPeer(new PeerSpec { PublicKey = b });
        Assert.False(s.UpdatePeer(b, new PeerUpdate { ExpiresAt = _clock.GetUtcNow() }).Enabled);
        Assert.Null(_fake!.GetPeer(a));
        Assert.Null(_fake.GetPeer(b));
    }

    [Fact]
    public void Set_with_ClearExpiresAt_keeps_the_peer_enabled_past_its_old_time()
    {
        using var s = Start();
        var k = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = k, ExpiresAt = _clock.GetUtcNow().AddMinutes(5) });
        s.UpdatePeer(k, new PeerUpdate { ClearExpiresAt = true });
        _clock.Advance(TimeSpan.FromMinutes(10));
        Assert.True(s.GetPeerInfo(k)!.Enabled);
        Assert.DoesNotContain("ExpiresAt", File.ReadAllText(PathOf));
    }

    [Fact]
    public void AddPeers_writes_once_and_reports_per_item_failures()
    {
        using var s = Start();
        var dup = NewKey();
        int writes = 0;
        var before = File.GetLastWriteTimeUtc(PathOf);
        var specs = new List<PeerSpec> { new() { PublicKey = dup }, new() { PublicKey = dup }, new() { PublicKey = NewKey() } };
        AtomicFileCounter.Run(() => writes++, () =>
        {
            var results = s.AddPeers(specs);
            Assert.NotNull(results[0].Status);
            Assert.Equal("PeerAlreadyExists", results[1].Error!.ErrorId);
            Assert.NotNull(results[2].Status);
        });
        Assert.Equal(1, writes);
        Assert.Equal(2, WgConfigParser.ParseFile(PathOf).Peers.Count);
    }

    [Fact]
    public void RemovePeers_writes_once_and_reports_unknown_keys()
    {
        using var s = Start();
        var keys = Enumerable.Range(0, 50).Select(_ => NewKey()).ToList();
        s.AddPeers(keys.Select(k => new PeerSpec { PublicKey = k }).ToList());
        var unknown = NewKey();
        int writes = 0;
        IReadOnlyList<bool> results = [];
        AtomicFileCounter.Run(() => writes++, () => results = s.RemovePeers([.. keys.Take(40), unknown, keys[0]]));
        Assert.Equal(1, writes);
        Assert.All(results.Take(40), Assert.True);
        Assert.False(results[40]);   // unknown
        Assert.False(results[41]);   // already removed in this batch
        Assert.Equal(10, s.PeerCount);
        Assert.Equal(10, WgConfigParser.ParseFile(PathOf).Peers.Count);
    }

    [Fact]
    public void UpdatePeers_writes_once_and_fails_items_on_their_own()
    {
        using var s = Start();
        var a = NewKey(); var b = NewKey();
        s.AddPeer(new PeerSpec { PublicKey = a, AllowedIPs = [IpPrefix.Parse("10.8.0.10/32")] });
        s.AddPeer(new PeerSpec { PublicKey = b, AllowedIPs = [IpPrefix.Parse("10.8.0.11/32")] });
        int writes = 0;
        IReadOnlyList<PeerBatchResult> results = [];
        AtomicFileCounter.Run(() => writes++, () => results = s.UpdatePeers([
            (a, new PeerUpdate { PersistentKeepalive = 25 }),
            (b, new PeerUpdate { AllowedIPs = [IpPrefix.Parse("10.8.0.10/32")] }),   // a's address: overlap
            (NewKey(), new PeerUpdate { Name = "nobody" }),
        ]));
        Assert.Equal(1, writes);
        Assert.Equal(25, results[0].Status!.PersistentKeepalive);
        Assert.Equal("AllowedIPsOverlap", results[1].Error!.ErrorId);
        Assert.Equal("PeerNotFound", results[2].Error!.ErrorId);
        var onDisk = WgConfigParser.ParseFile(PathOf).Peers.ToDictionary(p => p.PublicKey);
        Assert.Equal(25, onDisk[a].PersistentKeepalive);
        Assert.Equal([IpPrefix.Parse("10.8.0.11/32")], onDisk[b].AllowedIPs);
    }
}

/// <summary>Counts AtomicFile writes through its test seam (shared static: same collection as AtomicFileTests).</summary>
internal static class AtomicFileCounter
{
    public static void Run(Action onWrite, Action body)
    {
        AtomicFile.BeforeRename = _ => onWrite();
        try { body(); }
        finally { AtomicFile.BeforeRename = null; }
    }
}

[Collection("AtomicFile")]
public sealed class VPNServerUapiPersistenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wgpersist-uapi-").FullName;
    private string PathOf => System.IO.Path.Combine(_dir, "wg0.conf");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_UAPI_set_is_written_once_including_a_new_private_key_and_port()
    {
        using var s = VPNServer.Start(new ServerOptions
        {
            ListenPort = 0, BindAddress = System.Net.IPAddress.Loopback, ConfigPath = PathOf,
        });
        IUapiTarget target = s;
        var peer = WgPrivateKey.Generate().PublicKey;
        var newKey = WgPrivateKey.Generate();
        var request = new WgEngine.Uapi.UapiSetRequest { PrivateKey = newKey, ListenPort = 0 };
        var change = new WgEngine.Uapi.UapiPeerChange(peer);
        change.AllowedIPs.Add(IpPrefix.Parse("10.8.0.77/32"));
        request.Peers.Add(change);
        int writes = 0;
        AtomicFileCounter.Run(() => writes++, () => Assert.Equal(0, target.ApplyUapi(request)));
        Assert.Equal(1, writes);
        var onDisk = WgConfigParser.ParseFile(PathOf);
        Assert.Equal(newKey.ExportBase64(), onDisk.Interface.PrivateKey);
        Assert.Equal(s.ListenPort, onDisk.Interface.ListenPort);
        Assert.Equal(peer, Assert.Single(onDisk.Peers).PublicKey);
        s.Stop();
        // After Stop the keys are erased: nothing may be written any more (no zeroed key on disk).
        s.RemovePeer(peer);
        Assert.Equal(newKey.PublicKey, WgPrivateKey.Parse(WgConfigParser.ParseFile(PathOf).Interface.PrivateKey).PublicKey);
    }
}
