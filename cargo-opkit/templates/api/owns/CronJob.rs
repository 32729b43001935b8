{% call dependent("CronJob", ["The " ~ kind ~ "'s CronJob: `image` run to completion on `schedule`."]) %}
        CronJob {
            metadata: metadata({= var =}),
            spec: Some(CronJobSpec {
                schedule: {= var =}.spec.schedule.clone(),
                job_template: JobTemplateSpec {
                    metadata: None,
                    spec: Some(job_spec({= var =})),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
