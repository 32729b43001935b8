{% call dependent("DaemonSet", ["The " ~ kind ~ "'s DaemonSet: a pod running `image` on every node."]) %}
        DaemonSet {
            metadata: metadata({= var =}),
            spec: Some(DaemonSetSpec {
                selector: selector({= var =}),
                template: pod_template({= var =}),
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
