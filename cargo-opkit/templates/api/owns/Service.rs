{% call dependent("Service", ["The " ~ kind ~ "'s Service: `port` on the " ~ kind ~ "'s pods, at a stable address in the cluster."]) %}
        Service {
            metadata: metadata({= var =}),
            spec: Some(ServiceSpec {
                selector: Some(labels({= var =})),
                ports: Some(vec![ServicePort {
                    port: {= var =}.spec.port,
                    target_port: Some(IntOrString::Int({= var =}.spec.port)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
{% endcall %}
