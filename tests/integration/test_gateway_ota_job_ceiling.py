"""A cloud OTA job's download under the uplink's publish ceiling (issues 13 and 17).

The gateway asks the cloud for an image chunk by chunk, each request a publish on the uplink
connection. A cloud service disconnects a client above its per-connection ceiling, so the
requests must wait for room in the ceiling's window like the drain's publishes; sent as fast
as replies come back they would be a few hundred per second.

Real components (gateway_ota_common.OtaSite): swtpm, the edge and cloud mosquitto, fleetgwd,
a fleet-sim node, the cloud job server ota_job_cloud.py. The cloud broker runs the test
ceiling plugin (tests/plugins/publish_ceiling.c) at CEILING publishes in any 1 s window;
fleetgwd runs with uplink.max_publish_per_s GW_CEILING (below it, so that the job server's
replies, which follow the requests, stay under it too). Proves: job j-c downloads the whole
image in 1 KiB requests and creates its campaign; the broker never disconnected fleetgwd and
its busiest second held at most GW_CEILING publishes (before the requests waited, they went
out at the reply rate and fleetgwd was disconnected)."""

import os
import sys

from daemon_common import GW_CN
from fleetgw_harness import Env, expect, run_main
from gateway_ota_common import CLASS, OtaSite
from test_gateway_ota_job import Cloud, image_entry

CEILING = 12
GW_CEILING = 10
BLOCK = 1024


class CeilingSite(OtaSite):
    cloud_kw = {"publish_ceiling": CEILING}


def main():
    with Env("gateway-ota-job-ceiling") as env:
        site = CeilingSite(env)
        im = site.images
        site.start(uplink={"max_publish_per_s": GW_CEILING})
        ids = site.nodes("jc-", 1)
        site.fleet_sim("jc-", 1)
        site.wait_trusted(ids)
        cloud = Cloud(site)
        size = os.path.getsize(im.v2)
        cloud.serve({"j-c": im.v2})
        cloud.publish_job("j-c", {
            "image": image_entry(im.v2, version="2.0.0+0", **{"class": CLASS},
                                 digest=im.digest[im.v2]),
            "campaign": {"nodes": ids, "waves": ["100%"], "max_parallel": 1,
                         "node_deadline_s": 600, "step_timeout_s": 120},
            "transfer": {"block_size": BLOCK, "timeout_ms": 5000, "retries": 5}})
        st = cloud.wait_status("j-c", ("campaign_created", "refused", "failed"),
                               timeout=120 + 2 * size // (BLOCK * GW_CEILING))
        requests = len(cloud.events("GET", "j-c"))
        expect(st["state"] == "campaign_created",
               f"job j-c downloaded {size} bytes in {requests} requests and created its "
               f"campaign ({st['state']} {st.get('reason', '')} {st.get('detail', '')})")
        expect(requests >= size // BLOCK, f"{requests} chunk requests for {size} bytes")
        site.gwd.stop()
        kicks = [k for k in site.cloud.ceiling_kicks() if k[0] == GW_CN]
        peak = site.cloud.ceiling_max().get(GW_CN)
        expect(not kicks, f"the cloud broker never disconnected fleetgwd ({kicks[:3]})")
        expect(peak is not None and peak <= GW_CEILING,
               f"fleetgwd's busiest second at the broker: {peak} publishes "
               f"(uplink.max_publish_per_s {GW_CEILING}, broker ceiling {CEILING})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
