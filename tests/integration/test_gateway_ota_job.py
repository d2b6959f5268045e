"""Gateway OTA cloud jobs end to end (issue 13): a job document, the image fetched over the
uplink in chunks the gateway asks for, with restarts in the middle, the staging checks, the
campaign, and the statuses upstream.

Real swtpm, cloud and edge mosquitto, fleetgwd, fleet-sim nodes with flash files and the
real bootloader (gateway_ota_common.OtaSite); the cloud side is ota_job_cloud.py (a small
MQTT client over mutual TLS that answers the gateway's chunk requests). Proves:
 - a malformed job document is refused with the key named (job status upstream), nothing
   stored;
 - job j-v2 (v2 for 4 nodes): bad replies (a chunk at a wrong offset, one longer than asked
   for, one not matching its SHA-256) are refused and asked for again; the cloud goes away
   at 20 KiB (the gateway retries with back-off), fleetgwd is SIGKILLed while it waits and
   restarted, resumes from its recorded offset (16 KiB), the cloud comes back and the
   download completes; the bytes asked for again are bounded (at most 16 KiB + one block +
   the faulty blocks) and the gateway's own count of them is reported; the image is staged
   with source job:j-v2; the campaign j-v2 completes, every node trusted on 2.0.0+0; the
   retained job status says campaign_created and the campaign's says completed;
 - job j-tampered (a tampered image whose file SHA-256 the job names correctly) is
   downloaded and refused at staging (tampered), job j-mismatch (the SHA-256 of other
   bytes) is refused with digest_mismatch, job j-size (more bytes than the cloud has) fails
   after its retries with the short chunk named; the store is byte-for-byte as before and
   no partial download is left."""

import hashlib
import json
import os
import signal
import sys

from fleetgw_harness import Env, expect, require, run_main, wait_for
from daemon_common import PREFIX
from gateway_ota_common import CLASS, OtaSite
from test_agent_mqtt import Subscriber

HERE = os.path.dirname(os.path.abspath(__file__))
N = 4
BLOCK = 1024
SYNC = 16384   # ota_job.c's OTA_JOB_SYNC_BYTES
STOP_AT = 20480


class Cloud:
    """The cloud side: job documents published with mosquitto_pub, chunks served by
    ota_job_cloud.py runs, job statuses read by a subscriber."""

    def __init__(self, site):
        self.site = site
        self.env = site.env
        self.cert = site.cloud_ca.issue("operator")
        self.runs = []
        mon = site.cloud_ca.issue("monitor")
        self.sub = Subscriber(self.env, site.cloud, mon, client_id="job-status",
                              topic=f"{PREFIX}/ota/jobs/+/status")
        wait_for(lambda: any(t == f"{PREFIX}/ota/jobs/+/status"
                             for _, _, t in site.cloud.subscriptions("monitor")), 30,
                 "the job status subscription")

    def serve(self, jobs, *extra):
        c = self.site.cloud
        argv = [sys.executable, "-u", os.path.join(HERE, "ota_job_cloud.py"),
                "--port", str(c.port), "--cafile", self.site.cloud_ca.cert_path,
                "--cert", self.cert[0], "--key", self.cert[1], "--prefix", PREFIX,
                "--client-id", f"job-cloud-{len(self.runs) + 1}"]
        for job, path in jobs.items():
            argv += ["--serve", f"{job}={path}"]
        p = self.env.spawn(f"job-cloud-{len(self.runs) + 1}", argv + list(extra))
        self.runs.append(p)
        wait_for(lambda: "READY" in p.output() or p.check_alive(), 30,
                 "the cloud job server to subscribe")
        return p

    def publish_job(self, job, doc):
        text = doc if isinstance(doc, str) else json.dumps(doc)
        self.env.run([require("mosquitto_pub")] + self.site.cloud.client_args(self.cert) +
                     ["-t", f"{PREFIX}/ota/jobs/{job}"] + (["-m", text] if text else ["-n"]) +
                     ["-q", "1", "-r"],
                     check=True)

    def events(self, kind, job):
        out = []
        for p in self.runs:
            for line in p.output().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == kind and parts[1] == job:
                    out.append(parts[2:])
        return out

    def status(self, job):
        last = None
        for topic, payload in self.sub.messages():
            if topic == f"{PREFIX}/ota/jobs/{job}/status":
                last = json.loads(payload)
        return last

    def wait_status(self, job, states, timeout=180):
        def done():
            self.site.gwd.check_alive()
            st = self.status(job)
            return st if st and st.get("state") in states else None
        return wait_for(done, timeout, f"job {job} to reach {states}", interval=0.5)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def image_entry(path, **extra):
    e = {"sha256": sha256_file(path), "size": os.path.getsize(path)}
    e.update(extra)
    return e


def store_images(site):
    """The store's images and metadata (top level; jobs/ holds the jobs' own files)."""
    return sorted((p, h) for p, h in site.store_listing() if "/" not in p)


def main():
    with Env("gateway-ota-job") as env:
        site = OtaSite(env)
        im = site.images
        site.start()
        ids = site.nodes("job-", N)
        sim = site.fleet_sim("job-", N)
        site.wait_trusted(ids)
        expect(True, f"{N} fleet-sim nodes trusted on v1")
        cloud = Cloud(site)
        jobs_dir = os.path.join(site.store_dir, "jobs")
        transfer = {"block_size": BLOCK, "timeout_ms": 1000, "retries": 30}

        # -- a malformed job: refused with the key named, nothing stored --
        before = store_images(site)
        cloud.publish_job("j-bad-doc", {"image": image_entry(im.v2, colour="blue"),
                                        "campaign": {}})
        st = cloud.wait_status("j-bad-doc", ("refused",))
        expect(st.get("reason") == "bad_job" and "colour" in st.get("detail", ""),
               f"malformed job refused: {st.get('reason')} ({st.get('detail')})")
        expect(store_images(site) == before, "  nothing stored")

        # -- j-v2: faults, the cloud going away, fleetgwd SIGKILLed, resume --
        size = os.path.getsize(im.v2)
        cloud.serve({"j-v2": im.v2}, "--stop-at", str(STOP_AT),
                    "--fault", "wrong_offset@4096", "--fault", "too_long@8192",
                    "--fault", "bad_hash@12288")
        cloud.publish_job("j-v2", {
            "image": image_entry(im.v2, version="2.0.0+0", **{"class": CLASS},
                                 digest=im.digest[im.v2]),
            "campaign": {"nodes": ids, "waves": [1, "100%"], "max_parallel": N,
                         "node_deadline_s": 300, "step_timeout_s": 60},
            "transfer": transfer})
        first = cloud.runs[-1]
        wait_for(lambda: site.gwd.check_alive() or "STOPPED" in first.output(), 120,
                 "the cloud to stop serving at 20 KiB")
        faults = cloud.events("FAULT", "j-v2")
        refused = site.gwd_lines(r"job j-v2: chunk refused")
        expect(len(faults) == 3 and len(refused) == 3,
               f"3 bad replies refused by the gateway: {[ln.split(': ', 2)[-1] for ln in refused]}")
        wait_for(lambda: site.gwd.check_alive() or
                 len(site.gwd_lines(r"job j-v2: no reply; asking again")) >= 1, 60,
                 "the gateway to ask again after the cloud went silent")
        expect(True, "the gateway backs off and asks again while the cloud is silent")
        site.gwd.stop(signal.SIGKILL)
        with open(os.path.join(jobs_dir, "j-v2.state")) as f:
            rec = json.load(f)["status"]
        expect(rec["state"] == "downloading" and rec["offset"] == SYNC and
               os.path.getsize(os.path.join(jobs_dir, "j-v2.part")) >= STOP_AT,
               f"after SIGKILL: state file at offset {rec['offset']}, part file "
               f"{os.path.getsize(os.path.join(jobs_dir, 'j-v2.part'))} bytes")
        site.start()
        wait_for(lambda: site.gwd.check_alive() or
                 site.gwd_lines(r"job j-v2: download resumed at offset"), 60,
                 "fleetgwd to resume the download")
        expect(any(f"offset {SYNC} " in ln for ln in
                   site.gwd_lines(r"job j-v2: download resumed at offset")),
               f"fleetgwd resumed j-v2 at its recorded offset {SYNC}")
        cloud.serve({"j-v2": im.v2, "j-tampered": im.tampered, "j-mismatch": im.v1,
                     "j-size": im.v1})
        st = cloud.wait_status("j-v2", ("campaign_created", "refused", "failed"))
        expect(st["state"] == "campaign_created" and st.get("campaign") == "j-v2" and
               st.get("image") == im.digest[im.v2],
               f"job j-v2: {st['state']} {st.get('reason', '')} {st.get('detail', '')}")
        got = cloud.events("GET", "j-v2")
        asked = sum(int(g[1]) for g in got)
        again = asked - size
        bound = (STOP_AT - SYNC) + 2 * BLOCK + 3 * BLOCK + 8 * BLOCK
        expect(0 < again <= bound,
               f"bytes asked for again: {again} of {size} (bound {bound}; "
               f"{len(got)} requests); the gateway counts {st.get('bytes_again')} "
               f"after {st.get('resumes')} resume(s), {st.get('retries')} retries, "
               f"{st.get('bad_replies')} bad replies")
        print(f"job j-v2: {size} bytes, {len(got)} requests, {asked} bytes asked for, "
              f"{again} asked again; gateway: bytes_again={st.get('bytes_again')} "
              f"retries={st.get('retries')} bad_replies={st.get('bad_replies')}", flush=True)
        expect(st.get("resumes") == 1 and st.get("bad_replies") == 3,
               f"the job status reports the resume and the bad replies: {st.get('resumes')}, "
               f"{st.get('bad_replies')}")
        images = site.ctl_json("ota", "images")["images"]
        expect([(i["digest"], i["source"]) for i in images] == [(im.digest[im.v2], "job:j-v2")],
               f"the store holds v2 from job:j-v2: {[(i['digest'][:12], i['source']) for i in images]}")
        expect(not os.path.exists(os.path.join(jobs_dir, "j-v2.part")),
               "the partial download is gone")

        # the campaign the job created
        cst = site.wait_final("j-v2")
        expect(cst["state"] == "completed" and cst.get("counts", {}).get("succeeded") == N,
               f"campaign j-v2 {cst['state']}: {cst.get('counts')}")
        v = site.verdicts(ids)
        on_v2 = [i for i, n in v.items() if n.get("verdict") == "trusted" and
                 n.get("fw_version") == "2.0.0+0"]
        expect(len(on_v2) == N, f"{len(on_v2)}/{N} nodes trusted with firmware 2.0.0+0")
        up = wait_for(lambda: (lambda s: s if s and s.get("state") == "completed" else None)(
            site.upstream_status("j-v2")), 60, "the campaign's completed status upstream")
        expect(up.get("counts", {}).get("succeeded") == N,
               f"campaign status upstream (retained): {up.get('state')} {up.get('counts')}")

        # -- refusals after a full download: nothing stored, no part file left --
        before = store_images(site)
        cloud.publish_job("j-tampered", {"image": image_entry(im.tampered, **{"class": CLASS}),
                                         "campaign": {"nodes": ids[:1]},
                                         "transfer": transfer})
        st = cloud.wait_status("j-tampered", ("campaign_created", "refused", "failed"))
        expect(st["state"] == "refused" and st.get("reason") == "tampered",
               f"job j-tampered: {st['state']} {st.get('reason')} ({st.get('detail')})")
        bad_sha = dict(image_entry(im.v1), sha256=sha256_file(im.v2))
        cloud.publish_job("j-mismatch", {"image": bad_sha, "campaign": {"nodes": ids[:1]},
                                         "transfer": transfer})
        st = cloud.wait_status("j-mismatch", ("campaign_created", "refused", "failed"))
        expect(st["state"] == "refused" and st.get("reason") == "digest_mismatch",
               f"job j-mismatch: {st['state']} {st.get('reason')} ({st.get('detail')})")
        # a job naming more bytes than the cloud has: the short last chunk is refused, asked
        # for again `retries` times, and the job fails with the reason
        big = dict(image_entry(im.v1), size=os.path.getsize(im.v1) + 100)
        cloud.publish_job("j-size", {"image": big, "campaign": {"nodes": ids[:1]},
                                     "transfer": {"block_size": 8192, "timeout_ms": 200,
                                                  "retries": 2}})
        st = cloud.wait_status("j-size", ("campaign_created", "refused", "failed"))
        expect(st["state"] == "failed" and st.get("reason") == "bad_reply" and
               "were asked for" in st.get("detail", ""),
               f"job j-size: {st['state']} {st.get('reason')} ({st.get('detail')})")
        expect(store_images(site) == before, "nothing stored by the refused jobs")
        left = sorted(f for f in os.listdir(jobs_dir) if not f.endswith(".state"))
        expect(left == [], f"no partial download left in the jobs directory: {left}")
        expect(len(site.ctl_json("campaign", "list")["campaigns"]) == 1,
               "no campaign created by a refused job")

        # a retained document delivered again (reconnect) does not start a job again
        site.gwd.stop(signal.SIGTERM)
        site.start()
        # a barrier: a new (malformed) job arrives after the retained ones
        cloud.publish_job("j-barrier", "{")
        st = cloud.wait_status("j-barrier", ("refused",))
        expect(st.get("reason") == "bad_job", f"j-barrier refused: {st.get('detail')}")
        expect(not site.gwd_lines(r"job j-(v2|tampered|mismatch): fetching"),
               "after a restart the retained job documents start nothing again")

        # the cloud clears an ended job's retained document: its record goes, the others stay
        expect(os.path.exists(os.path.join(jobs_dir, "j-barrier.state")),
               "an ended job keeps its record while its document is retained")
        cloud.publish_job("j-barrier", "")
        wait_for(lambda: site.gwd.check_alive() or
                 site.gwd_lines(r"job j-barrier: its document was cleared; its record is "
                                r"removed"), 30,
                 "fleetgwd to remove the record of a job whose document was cleared")
        expect(not os.path.exists(os.path.join(jobs_dir, "j-barrier.state")),
               "the cleared job's record is removed, and said so")
        expect(os.path.exists(os.path.join(jobs_dir, "j-v2.state")),
               "the records of jobs still retained stay")
        sim.stop(signal.SIGTERM)
        expect(site.gwd.stop() == 0, "fleetgwd stops cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
