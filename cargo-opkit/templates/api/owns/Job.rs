{% call dependent("Job", ["The " ~ kind ~ "'s Job: `image` run once to completion. A Job's pod template cannot change", "once created, so a changed `image` fails to apply until the Job is deleted."]) %}
        Job {
            metadata: metadata({= var =}),
            spec: Some(job_spec({= var =})),
            ..Default::default()
        }
{% endcall %}
