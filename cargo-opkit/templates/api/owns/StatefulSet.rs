{% call dependent("StatefulSet", ["The " ~ kind ~ "'s StatefulSet: `replicas` pods running `image`, each with a stable name."]) %}
        StatefulSet {
            metadata: metadata({= var =}),
            spec: Some(StatefulSetSpec {
                replicas: Some({= var =}.spec.replicas),
{% if "Service" in owned_kinds %}
                service_name: Some({= var =}.name_any()),
{% endif %}
                selector: selector({= var =}),
                template: pod_template({= var =}),
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
