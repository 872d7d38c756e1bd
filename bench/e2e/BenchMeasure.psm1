# Measuring helpers shared by the end-to-end benchmarks: medians, a process's CPU time and the machine's, an
# iperf3 run between two namespaces with its CPU per GB.

Set-StrictMode -Version Latest
$script:ClkTck = [double](& getconf CLK_TCK)

function Get-Median([double[]] $xs) {
    $s = [double[]]($xs | Sort-Object); $n = $s.Count
    if ($n % 2) { $s[($n - 1) / 2] } else { ($s[$n / 2 - 1] + $s[$n / 2]) / 2 }
}

# utime + stime of all the process's threads, in seconds (proc(5): /proc/<pid>/stat fields 14 and 15, in clock
# ticks, counted after the "(comm)" field, which may itself contain spaces).
function Get-ProcCpuSeconds([int] $ProcessId) {
    $t = [System.IO.File]::ReadAllText("/proc/$ProcessId/stat")
    $f = $t.Substring($t.LastIndexOf(')') + 2).Split(' ')
    ([double]$f[11] + [double]$f[12]) / $script:ClkTck
}

# The whole machine's busy CPU seconds, all cores summed (proc(5): the "cpu" line of /proc/stat is user nice
# system idle iowait irq softirq steal, in clock ticks), and softirq on its own.
function Get-MachineCpu {
    $f = ([System.IO.File]::ReadAllLines('/proc/stat')[0] -split '\s+')[1..8] | ForEach-Object { [double]$_ }
    [pscustomobject]@{ Busy = ($f[0] + $f[1] + $f[2] + $f[5] + $f[6] + $f[7]) / $script:ClkTck; Softirq = $f[6] / $script:ClkTck }
}

# One iperf3 TCP run between two namespaces (tests/Interop/WgInterop.psm1 must be imported): a one-shot server
# bound to -ServerAddress in -ServerNamespace, the client in -ClientNamespace, bounded (killed after Duration + 20 s).
# Returns the throughput received and, per GB received, the CPU seconds of -ProcessIds together and of the machine.
function Invoke-IperfRun {
    param(
        [Parameter(Mandatory)][string] $ServerNamespace,
        [Parameter(Mandatory)][string] $ClientNamespace,
        [Parameter(Mandatory)][string] $ServerAddress,
        [Parameter(Mandatory)][int[]] $ProcessIds,
        [Parameter(Mandatory)][string] $TempDir,
        [int] $Port = 5201,
        [int] $Duration = 5,
        [int] $Streams = 1,
        [switch] $Reverse
    )
    $log = Join-Path $TempDir "iperf3-s-$([guid]::NewGuid().ToString('n')).log"
    $srv = Start-Process -FilePath ip -ArgumentList 'netns', 'exec', $ServerNamespace, 'iperf3', '-s', '-1', '-B', $ServerAddress, '-p', "$Port" `
        -PassThru -RedirectStandardOutput $log
    try {
        $ready = Wait-WgCondition { (Invoke-InNamespace $ServerNamespace ss '-Hltn', "src $ServerAddress" -AllowFailure) -match ":$Port" } -TimeoutSeconds 5
        if (-not $ready) { throw "iperf3 server did not start in $ServerNamespace" }
        $psi = [System.Diagnostics.ProcessStartInfo]::new('ip')
        $argv = @('netns', 'exec', $ClientNamespace, 'iperf3', '-c', $ServerAddress, '-p', "$Port", '-t', "$Duration", '-P', "$Streams", '-J', '--connect-timeout', '3000')
        if ($Reverse) { $argv += '-R' }
        foreach ($a in $argv) { $psi.ArgumentList.Add($a) }
        $psi.RedirectStandardOutput = $true; $psi.UseShellExecute = $false
        $cpu = { ($ProcessIds | ForEach-Object { Get-ProcCpuSeconds $_ } | Measure-Object -Sum).Sum }
        $cpu0 = & $cpu; $m0 = Get-MachineCpu
        $client = [System.Diagnostics.Process]::Start($psi)
        $outTask = $client.StandardOutput.ReadToEndAsync()
        if (-not $client.WaitForExit(($Duration + 20) * 1000)) { $client.Kill($true); throw "iperf3 client exceeded $($Duration + 20) s" }
        $used = (& $cpu) - $cpu0; $m1 = Get-MachineCpu
        $j = $outTask.GetAwaiter().GetResult() | ConvertFrom-Json
        if ($j.PSObject.Properties['error']) { throw "iperf3: $($j.error)" }
        $bytes = [long]$j.end.sum_received.bytes
        if ($bytes -le 0) { throw 'iperf3 received nothing' }
        $gb = $bytes / 1e9
        $sent = $j.end.sum_sent
        [pscustomobject]@{
            Mbps = [math]::Round($j.end.sum_received.bits_per_second / 1e6, 1); Bytes = $bytes
            Retransmits = if ($sent.PSObject.Properties['retransmits']) { [long]$sent.retransmits } else { $null }
            ProcCpuSecPerGB = [math]::Round($used / $gb, 2)
            MachineCpuSecPerGB = [math]::Round(($m1.Busy - $m0.Busy) / $gb, 2)
            SoftirqSecPerGB = [math]::Round(($m1.Softirq - $m0.Softirq) / $gb, 2)
        }
    } finally {
        if (-not $srv.HasExited) { $srv.Kill(); [void]$srv.WaitForExit(3000) }
    }
}

# Summaries of a `perf record -g` file into one text file: by DSO, by symbol (self), by symbol inclusive of callees.
function Write-PerfSummary([string] $Data, [string] $OutFile, [string] $Head) {
    $flat = & perf report -i $Data --no-children --sort dso,symbol --stdio -g none --percent-limit 0.1 2>$null
    $byDso = & perf report -i $Data --no-children --sort dso --stdio -g none 2>$null
    $incl = & perf report -i $Data --children --sort symbol --stdio -g none --percent-limit 3 2>$null
    Set-Content -LiteralPath $OutFile -Value (@($Head, '', '## by DSO') + $byDso + @('', '## by symbol (self)') + $flat +
        @('', '## by symbol, inclusive of callees (system calls, engine entry points)') + $incl)
}

Export-ModuleMember -Function Get-Median, Get-ProcCpuSeconds, Get-MachineCpu, Invoke-IperfRun, Write-PerfSummary
